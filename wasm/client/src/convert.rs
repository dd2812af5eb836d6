//! The converter panel: typed addresses, packed bytes and services, answered as you type by
//! [`super::conversions`]. It needs no connection, so it keeps working whatever the relay does.

use std::rc::Rc;

use wasm_bindgen::JsCast;
use web_sys::{Document, Element, Event, HtmlInputElement, HtmlSelectElement};

use super::conversions::{address_rows, packed_rows, service_rows, Row};
use super::dom::{by_id, create, listen, JsResult};

struct Panel {
    document: Document,
    address: HtmlInputElement,
    address_out: Element,
    packed: HtmlInputElement,
    packed_out: Element,
    service: HtmlInputElement,
    proto: HtmlSelectElement,
    service_out: Element,
}

/// Wires the panel and shows the answers for the fields' initial values.
pub fn attach(document: &Document) -> JsResult<()> {
    let panel = Rc::new(Panel {
        address: by_id(document, "conv-address")?,
        address_out: by_id(document, "conv-address-out")?,
        packed: by_id(document, "conv-bytes")?,
        packed_out: by_id(document, "conv-bytes-out")?,
        service: by_id(document, "conv-service")?,
        proto: by_id(document, "conv-proto")?,
        service_out: by_id(document, "conv-service-out")?,
        document: document.clone(),
    });
    panel.address_changed();
    panel.packed_changed();
    panel.service_changed();
    let on = |element: &Element, event: &str, method: fn(&Panel)| {
        let panel = Rc::clone(&panel);
        listen(element, event, move |_: Event| method(&panel));
    };
    on(
        panel.address.unchecked_ref(),
        "input",
        Panel::address_changed,
    );
    on(panel.packed.unchecked_ref(), "input", Panel::packed_changed);
    on(
        panel.service.unchecked_ref(),
        "input",
        Panel::service_changed,
    );
    on(
        panel.proto.unchecked_ref(),
        "change",
        Panel::service_changed,
    );
    Ok(())
}

impl Panel {
    fn address_changed(&self) {
        self.show(&self.address_out, &address_rows(&self.address.value()));
    }

    fn packed_changed(&self) {
        self.show(&self.packed_out, &packed_rows(&self.packed.value()));
    }

    fn service_changed(&self) {
        let proto = self.proto.value();
        let proto = (!proto.is_empty()).then_some(proto.as_str());
        self.show(
            &self.service_out,
            &service_rows(&self.service.value(), proto),
        );
    }

    /// Replaces the `<dl>`'s rows: `<div><dt>label</dt><dd>value</dd></div>`, errors marked.
    fn show(&self, list: &Element, rows: &[Row]) {
        list.set_text_content(None);
        for row in rows {
            let _ = self.row(list, row);
        }
    }

    fn row(&self, list: &Element, row: &Row) -> JsResult<()> {
        let doc = &self.document;
        let (value, class) = match &row.value {
            Ok(value) => (value.as_str(), ""),
            Err(error) => (error.as_str(), "error"),
        };
        let wrapper = create(doc, "div", class, None)?;
        let term = create(doc, "dt", "", None)?;
        if row.call {
            let code = create(doc, "code", "", Some(&row.label))?;
            term.append_child(&code)?;
        } else {
            term.set_text_content(Some(&row.label));
        }
        let detail = create(doc, "dd", "", None)?;
        let code = create(doc, "code", "", Some(value))?;
        detail.append_child(&code)?;
        wrapper.append_child(&term)?;
        wrapper.append_child(&detail)?;
        list.append_child(&wrapper)?;
        Ok(())
    }
}
