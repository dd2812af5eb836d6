// <inet-converter>: importing the module defines the element (see inet-converter.js).
export class InetConverter extends HTMLElement {
  static observedAttributes: string[];
}

declare global {
  interface HTMLElementTagNameMap {
    "inet-converter": InetConverter;
  }
}
