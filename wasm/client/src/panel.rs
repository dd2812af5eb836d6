//! The connection panel's elements: the target list, the typed target's error, Connect and
//! Disconnect, auto-reconnect, and the status line, drawn from a [`View`].

use std::cell::RefCell;

use web_sys::{
    Document, Element, HtmlButtonElement, HtmlElement, HtmlInputElement, HtmlSelectElement,
};

use super::connection::View;
use super::dom::{self, by_id, JsResult};

pub struct Panel {
    /// `#connect-form`: its submit (Connect, or Enter in the target field) connects.
    pub form: Element,
    /// `#target`: the relay's targets, and "Other" (value `""`) for a typed one.
    pub target: HtmlSelectElement,
    /// `#custom-target-field`, shown for "Other", and its input.
    custom_field: HtmlElement,
    pub custom: HtmlInputElement,
    /// `#target-error`: why the typed target cannot be used.
    target_error: HtmlElement,
    connect: HtmlButtonElement,
    /// `#disconnect`: shown while there is something to close or cancel.
    pub disconnect: HtmlButtonElement,
    /// `#auto-reconnect`.
    pub auto: HtmlInputElement,
    /// `#status`: the connection state in words (a polite live region).
    status: HtmlElement,
    /// What was drawn last.
    shown: RefCell<Option<View>>,
}

impl Panel {
    pub fn attach(document: &Document) -> JsResult<Self> {
        Ok(Self {
            form: by_id(document, "connect-form")?,
            target: by_id(document, "target")?,
            custom_field: by_id(document, "custom-target-field")?,
            custom: by_id(document, "custom-target")?,
            target_error: by_id(document, "target-error")?,
            connect: by_id(document, "connect")?,
            disconnect: by_id(document, "disconnect")?,
            auto: by_id(document, "auto-reconnect")?,
            status: by_id(document, "status")?,
            shown: RefCell::default(),
        })
    }

    /// Draws the connection's state, when it changed: rewriting the same status would make
    /// screen readers announce it again.
    pub fn render(&self, document: &Document, view: View) {
        if self.shown.borrow().as_ref() == Some(&view) {
            return;
        }
        let _ = self.status.set_attribute("data-state", view.state);
        self.status.set_text_content(Some(&view.text));
        if !view.disconnect {
            dom::pass_focus(document, &self.disconnect, &self.connect);
        }
        self.disconnect.set_hidden(!view.disconnect);
        *self.shown.borrow_mut() = Some(view);
    }

    /// The selected target's name (`""` for "Other") and the typed one.
    pub fn requested(&self) -> (String, String) {
        (self.target.value(), self.custom.value())
    }

    /// Fills the target list with the relay's `(name, address)` targets and "Other".
    pub fn fill_targets(&self, document: &Document, list: &[(String, String)]) -> JsResult<()> {
        let select = &self.target;
        let selected = select.value();
        select.set_text_content(None);
        for (name, address) in list {
            let text = if name == address {
                name.clone()
            } else {
                format!("{name} — {address}")
            };
            let option = dom::create(document, "option", "", Some(&text))?;
            option.set_attribute("value", name)?;
            select.append_child(&option)?;
        }
        let other = dom::create(document, "option", "", Some("Other (HOST:PORT)…"))?;
        other.set_attribute("value", "")?;
        select.append_child(&other)?;
        let known = selected.is_empty() || list.iter().any(|(name, _)| *name == selected);
        if known {
            select.set_value(&selected);
        } else {
            // A name the relay no longer lists: keep it as a typed target.
            select.set_value("");
            self.custom.set_value(&selected);
        }
        self.target_changed();
        Ok(())
    }

    /// "Other" shows the field for a typed target.
    pub fn target_changed(&self) {
        let other = self.target.value().is_empty();
        self.custom_field.set_hidden(!other);
        if !other {
            self.show_target_error(None);
        }
    }

    pub fn show_target_error(&self, error: Option<&str>) {
        self.target_error.set_hidden(error.is_none());
        self.target_error.set_text_content(error);
        if error.is_some() {
            let _ = self.custom.set_attribute("aria-invalid", "true");
        } else {
            let _ = self.custom.remove_attribute("aria-invalid");
        }
    }
}
