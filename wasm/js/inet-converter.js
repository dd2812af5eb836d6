// <inet-converter>: the client's Convert panel as a drop-in element for docs pages. Every
// answer is the converter module's (inet.js, the Rust core); this file only reads the fields
// and lays out rows. Built into web/pkg/inet-converter.js by wasm/build.sh (minified, and held
// to 3 KB gzipped there).
//
// Attributes: value (the address or network, default 192.168.1.190), bytes (packed bytes,
// default c0 a8 01 be), service (default http), protocol (tcp, udp or empty for any; default
// tcp), show (which panels, any of "address bytes services"; default all three).
// Styling: the CSS custom properties below (--inet-font is a `font` shorthand, --inet-mono-font
// a font family), and the parts panel, label, input, select, output, row, term, value, error.
import init, {
  AF_INET, AF_INET6, inet_aton, inet_ntoa, inet_pton, inet_ntop, getservbyname, getservbyport,
  address_facts, subnet,
} from "./inet.js";

const CSS = `:host{display:block;container-type:inline-size;font:var(--inet-font,inherit);color:var(--inet-color,inherit)}
[part~=panel]{margin:0 0 var(--inet-gap,1em)}
[part~=label]{display:block;font-weight:600;margin-bottom:.25em}
[part~=input],[part~=select]{font:inherit;font-family:var(--inet-mono-font,ui-monospace,monospace);color:inherit;
background:var(--inet-field-background,transparent);border:1px solid var(--inet-border-color,#888);
border-radius:var(--inet-radius,4px);padding:.35em .5em;box-sizing:border-box}
[part~=input]{width:min(100%,28em)}
:focus-visible{outline:2px solid var(--inet-accent,#2563eb);outline-offset:1px}
[part~=output]{display:grid;grid-template-columns:max-content 1fr;gap:.15em 1em;margin:.5em 0 0}
[part~=row]{display:contents}
[part~=term]{color:var(--inet-muted,inherit);opacity:.85}
[part~=value]{margin:0;font-family:var(--inet-mono-font,ui-monospace,monospace);overflow-wrap:anywhere}
[part~=error]{color:var(--inet-error,#c0262d)}
@container (max-width:30em){[part~=output]{grid-template-columns:1fr}[part~=value]{margin-bottom:.3em}}`;

const FAMILY = { [AF_INET]: "AF_INET", [AF_INET6]: "AF_INET6" };
const PANELS = {
  address: ["Address or network", "value", "192.168.1.190"],
  bytes: ["Packed bytes", "bytes", "c0 a8 01 be"],
  services: ["Service name or port", "service", "http"],
};
let sheet;
let counter = 0;
const ready = init();

/** What a call gave: its result, or the error as Python prints it. */
function attempt(f) {
  try {
    return [f()];
  } catch (e) {
    return [`${e.name}: ${e.message}`, 1];
  }
}

/** The Python bytes literal of packed 4 or 16 bytes, from the module's own address facts. */
const repr = (b) => address_facts(b.length == 4 ? inet_ntoa(b) : inet_ntop(AF_INET6, b)).python_bytes;

function facts(f) {
  return [
    ["family", `${FAMILY[f.family]} (${f.family})`],
    [f.family == AF_INET ? "dotted" : "text (inet_ntop)", f.canonical],
    ["integer", f.integer],
    ["hex", f.hex],
    ["binary", f.binary],
    ["Python bytes", f.python_bytes],
    ["kind", f.kind],
  ];
}

/** Rows for address text: a network's subnet, or the parsers' answers; then the facts. */
function addressRows(text) {
  if (!text) return [];
  let rows = [];
  let address = text;
  if (text.includes("/")) {
    address = text.split("/")[0];
    const [n, bad] = attempt(() => subnet(text));
    rows = bad ? [["subnet", n, 1]] : [
      ["network", `${n.network}/${n.prefix}`], ["netmask", n.netmask], ["first host", n.first_host],
      ["last host", n.last_host], ...(n.broadcast ? [["broadcast", n.broadcast]] : []),
      ["addresses", n.size], ["usable hosts", n.hosts],
    ];
  } else {
    const [aton, bad] = attempt(() => inet_aton(text));
    rows.push(["inet_aton", bad ? aton : repr(aton), bad]);
    for (const family of [AF_INET, AF_INET6]) {
      const [packed, fail] = attempt(() => inet_pton(family, text));
      rows.push([`inet_pton(${FAMILY[family]})`, fail ? packed : repr(packed), fail]);
    }
    // Only the permissive parser read it (127.1): the facts of the address it read.
    if (!bad && attempt(() => address_facts(text))[1]) {
      address = inet_ntoa(aton);
      rows.push(["inet_aton reads it as", address]);
    }
  }
  const [f, bad] = attempt(() => address_facts(address));
  return bad ? rows : rows.concat(facts(f));
}

/** Hex (c0 a8 01 be, c0:a8, 0xc0,0xa8, \xc0\xa8) or a Python bytes literal, as bytes. */
function parseBytes(text) {
  const literal = /^b(['"])(.*)\1$/s.exec(text);
  if (literal) {
    const out = [];
    const escapes = { n: 10, r: 13, t: 9, "\\": 92, "'": 39, '"': 34 };
    for (let i = 0, s = literal[2]; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c > 126) throw Error("a bytes literal holds ASCII only");
      if (c == 92) {
        const e = s[++i];
        c = e == "x" && /^[\da-f]{2}$/i.test(s.slice(i + 1, i + 3)) ? parseInt(s.slice(i + 1, (i += 2) + 1), 16) : escapes[e];
        if (c == null) throw Error(`unsupported escape \\${e ?? ""}`);
      }
      out.push(c);
    }
    return new Uint8Array(out);
  }
  const hex = text.replace(/0x|\\x|[\s:,]/gi, "");
  if (!/^([\da-f]{2})*$/i.test(hex)) throw Error("expected hex bytes (c0 a8 01 be) or b'...'");
  return Uint8Array.from(hex.match(/../g) ?? [], (h) => parseInt(h, 16));
}

function bytesRows(text) {
  if (!text.trim()) return [];
  const [bytes, bad] = attempt(() => parseBytes(text.trim()));
  if (bad) return [["bytes", bytes.replace(/^Error: /, ""), 1]];
  const rows = [["bytes", `${bytes.length} bytes`], ["inet_ntoa", ...attempt(() => inet_ntoa(bytes))]];
  let canonical;
  for (const family of [AF_INET, AF_INET6]) {
    const [t, fail] = attempt(() => inet_ntop(family, bytes));
    canonical ??= fail ? canonical : t;
    rows.push([`inet_ntop(${FAMILY[family]})`, t, fail]);
  }
  return canonical ? rows.concat(facts(address_facts(canonical))) : rows;
}

function serviceRows(text, protocol) {
  if (!text) return [];
  const args = protocol ? [protocol] : [];
  return /^\d+$/.test(text)
    ? [["getservbyport", ...attempt(() => getservbyport(+text, ...args))]]
    : [["getservbyname", ...attempt(() => getservbyname(text, ...args))]];
}

export class InetConverter extends HTMLElement {
  static observedAttributes = ["value", "bytes", "service", "protocol", "show"];

  connectedCallback() {
    if (!this.shadowRoot) {
      const root = this.attachShadow({ mode: "open" });
      // A constructed sheet, not a <style>: pages whose CSP forbids inline styles take it.
      sheet ??= new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
      root.addEventListener("input", () => this.update());
    }
    this.render();
  }

  attributeChangedCallback(name, old, value) {
    if (!this.shadowRoot) return;
    const field = this.shadowRoot.querySelector(`[data-attr=${name}]`);
    if (name == "show" || !field) this.render();
    else if (field.value != value) {
      field.value = value ?? "";
      this.update();
    }
  }

  render() {
    const show = (this.getAttribute("show") ?? "address bytes services").split(/\s+/);
    const html = [];
    for (const [key, [label, attr, fallback]] of Object.entries(PANELS)) {
      if (!show.includes(key)) continue;
      const id = `i${++counter}`;
      const value = (this.getAttribute(attr) ?? fallback).replace(/&/g, "&amp;").replace(/"/g, "&quot;");
      const protocol = this.getAttribute("protocol") ?? "tcp";
      html.push(`<div part="panel ${key}"><label part="label" for="${id}">${label}</label>
<input part="input" id="${id}" data-attr="${attr}" value="${value}" spellcheck="false" autocapitalize="off" autocomplete="off">${
        key == "services"
          ? ` <select part="select" aria-label="Protocol" data-attr="protocol">${["", "tcp", "udp"]
            .map((p) => `<option value="${p}"${p == protocol ? " selected" : ""}>${p || "any"}</option>`).join("")}</select>`
          : ""
      }<dl part="output" data-panel="${key}" aria-live="polite" aria-label="Answers for the ${label.toLowerCase()}"></dl></div>`);
    }
    this.shadowRoot.innerHTML = html.join("");
    ready.then(() => this.update(), (e) => {
      this.shadowRoot.innerHTML = `<p part="error" role="alert"></p>`;
      this.shadowRoot.firstChild.textContent = `The converter module did not load: ${e}`;
    });
  }

  update() {
    const root = this.shadowRoot;
    const field = (attr) => root.querySelector(`[data-attr=${attr}]`)?.value ?? "";
    for (const list of root.querySelectorAll("dl")) {
      const key = list.dataset.panel;
      const rows = key == "address" ? addressRows(field("value").trim())
        : key == "bytes" ? bytesRows(field("bytes"))
        : serviceRows(field("service").trim(), field("protocol"));
      list.replaceChildren(...rows.map(([term, value, bad]) => {
        const row = document.createElement("div");
        row.setAttribute("part", bad ? "row error" : "row");
        row.append(document.createElement("dt"), document.createElement("dd"));
        row.firstChild.setAttribute("part", "term");
        row.lastChild.setAttribute("part", bad ? "value error" : "value");
        row.firstChild.textContent = term;
        row.lastChild.textContent = String(value);
        return row;
      }));
    }
  }
}

if (!customElements.get("inet-converter")) customElements.define("inet-converter", InetConverter);
