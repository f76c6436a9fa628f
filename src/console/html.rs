//! HTML written by hand, escaped at every boundary: [`esc`] for text and attribute values,
//! the page frame every console page shares ([`page`]), and small form helpers that put a
//! field's error next to the field.

use std::fmt::Write as _;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A finished HTML document.
#[derive(Debug)]
pub struct Html(pub StatusCode, pub String);

impl IntoResponse for Html {
    fn into_response(self) -> Response {
        let mut response = (self.0, self.1).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        response
    }
}

/// Text made safe for HTML text and for a double-quoted attribute value.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// The pages of the navigation bar: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/admin/keys", "Keys"),
    ("/admin/users", "Users"),
    ("/admin/usage", "Usage"),
    ("/admin/live", "Live"),
    ("/admin/settings", "Settings"),
];

/// Who is logged in, for the frame (absent on the login page).
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// The admin key's name.
    pub key_name: &'a str,
    /// The session's CSRF token, for the logout form and for scripts.
    pub csrf: &'a str,
    /// The path of the page shown (its tab is marked current).
    pub current: &'a str,
}

/// A whole page: head, navigation, `body` in `<main>`.
pub fn page(title: &str, frame: Option<Frame<'_>>, body: &str) -> String {
    let mut out = String::with_capacity(body.len() + 2048);
    out.push_str("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    out.push_str("<meta name=\"color-scheme\" content=\"light dark\">");
    let _ = write!(out, "<title>{} · ollama-gateway</title>", esc(title));
    out.push_str("<link rel=\"icon\" href=\"/admin/assets/favicon.svg\" type=\"image/svg+xml\">");
    out.push_str("<link rel=\"stylesheet\" href=\"/admin/assets/console.css\">");
    out.push_str("<script src=\"/admin/assets/console.js\" defer></script>");
    if let Some(f) = frame {
        let _ = write!(
            out,
            "<meta name=\"csrf-token\" content=\"{}\">",
            esc(f.csrf)
        );
    }
    out.push_str("</head><body>");
    out.push_str("<a class=\"skip\" href=\"#main\">Skip to content</a>");
    out.push_str("<header class=\"top\"><a class=\"brand\" href=\"/admin/keys\"><span class=\"logo\" aria-hidden=\"true\"></span>ollama-gateway <small>console</small></a>");
    if let Some(f) = frame {
        out.push_str("<nav aria-label=\"Console\"><ul>");
        for (path, label) in NAV {
            let current = if f.current == *path {
                " aria-current=\"page\""
            } else {
                ""
            };
            let _ = write!(out, "<li><a href=\"{path}\"{current}>{label}</a></li>");
        }
        out.push_str("</ul></nav>");
        let _ = write!(
            out,
            "<form class=\"who\" method=\"post\" action=\"/admin/logout\"><span title=\"The admin key of this session\">{}</span>{}<button type=\"submit\" class=\"ghost\">Log out</button></form>",
            esc(f.key_name),
            csrf_field(f.csrf)
        );
    }
    out.push_str("</header><main id=\"main\">");
    let _ = write!(out, "<h1>{}</h1>", esc(title));
    out.push_str(body);
    out.push_str("</main></body></html>\n");
    out
}

/// The hidden CSRF field every state-changing form carries.
pub fn csrf_field(csrf: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"_csrf\" value=\"{}\">",
        esc(csrf)
    )
}

/// Form errors, by field name.
#[derive(Debug, Default, Clone)]
pub struct Errors(pub Vec<(String, String)>);

impl Errors {
    /// The error of `field`, if any.
    pub fn of(&self, field: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// Add one.
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0.push((field.to_owned(), message.into()));
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One labelled input with its hint and, when there is one, its error right under it.
pub struct Field<'a> {
    pub name: &'a str,
    pub label: &'a str,
    pub value: &'a str,
    pub kind: &'a str,
    pub hint: &'a str,
    pub placeholder: &'a str,
    pub required: bool,
}

impl<'a> Field<'a> {
    /// A text field.
    pub fn text(name: &'a str, label: &'a str, value: &'a str) -> Self {
        Self {
            name,
            label,
            value,
            kind: "text",
            hint: "",
            placeholder: "",
            required: false,
        }
    }

    /// With a hint under the label.
    pub fn hint(mut self, hint: &'a str) -> Self {
        self.hint = hint;
        self
    }

    /// With a placeholder.
    pub fn placeholder(mut self, placeholder: &'a str) -> Self {
        self.placeholder = placeholder;
        self
    }

    /// Of another input type (`number`, `password`, `datetime-local`).
    pub fn kind(mut self, kind: &'a str) -> Self {
        self.kind = kind;
        self
    }

    /// Required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// The markup; `errors` decides whether it is marked invalid.
    pub fn render(&self, id_prefix: &str, errors: &Errors) -> String {
        let id = format!("{id_prefix}-{}", self.name);
        let error = errors.of(self.name);
        let mut out = String::from("<div class=\"field\">");
        let _ = write!(
            out,
            "<label for=\"{}\">{}</label>",
            esc(&id),
            esc(self.label)
        );
        let described = match (self.hint.is_empty(), error.is_some()) {
            (false, true) => format!(" aria-describedby=\"{id}-hint {id}-error\""),
            (false, false) => format!(" aria-describedby=\"{id}-hint\""),
            (true, true) => format!(" aria-describedby=\"{id}-error\""),
            (true, false) => String::new(),
        };
        let _ = write!(
            out,
            "<input id=\"{}\" name=\"{}\" type=\"{}\" value=\"{}\"{}{}{}{}>",
            esc(&id),
            esc(self.name),
            esc(self.kind),
            esc(self.value),
            if self.placeholder.is_empty() {
                String::new()
            } else {
                format!(" placeholder=\"{}\"", esc(self.placeholder))
            },
            if self.required { " required" } else { "" },
            if error.is_some() {
                " aria-invalid=\"true\""
            } else {
                ""
            },
            described,
        );
        if !self.hint.is_empty() {
            let _ = write!(
                out,
                "<small class=\"hint\" id=\"{}-hint\">{}</small>",
                esc(&id),
                esc(self.hint)
            );
        }
        if let Some(message) = error {
            let _ = write!(
                out,
                "<small class=\"error\" id=\"{}-error\" role=\"alert\">{}</small>",
                esc(&id),
                esc(message)
            );
        }
        out.push_str("</div>");
        out
    }
}

/// A number with thousands separators (`1234567` -> `1,234,567`).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A short form of a large number (`1.2k`, `3.4M`), for chart axes.
pub fn short(n: f64) -> String {
    let a = n.abs();
    if a >= 1e9 {
        format!("{:.1}G", n / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", n / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", n / 1e3)
    } else if a >= 1e3 {
        format!("{:.1}k", n / 1e3)
    } else {
        format!("{n:.0}")
    }
}

/// A time in milliseconds as people read it (`0.42 ms`, `87 ms`, `2.3 s`).
pub fn millis(ms: f64) -> String {
    if ms >= 10_000.0 {
        format!("{:.0} s", ms / 1000.0)
    } else if ms >= 1000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 10.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_values_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        let field = Field::text("name", "Name", "\"><img src=x onerror=alert(1)>");
        let html = field.render("k", &Errors::default());
        assert!(!html.contains("<img"), "{html}");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(short(12_345.0), "12k");
        assert_eq!(millis(0.5), "0.50 ms");
        assert_eq!(millis(2300.0), "2.3 s");
    }
}
