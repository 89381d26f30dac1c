//! The pages' HTML: one layout, a few builders, and [`esc`], which every text that did not come
//! from this file goes through — names, manifests, events, errors, query values.

use std::fmt::Write as _;

use axum::response::Html;
use jiff::Timestamp;

use super::Principal;
use crate::backend::ExecutionStatus;

/// Escapes text for HTML content and quoted attribute values.
#[must_use]
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// Percent-encodes text for a URL's path segment or query value.
#[must_use]
pub fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// What every page's frame shows: who is signed in, and how to log out.
#[derive(Debug, Clone, Default)]
pub struct Frame {
    who: Option<(String, String, String, bool)>,
    csrf: String,
}

impl Frame {
    /// The frame of a page nobody is signed in to (login, errors).
    pub fn bare() -> Self {
        Self::default()
    }

    /// The frame of a signed-in page.
    pub fn signed(principal: &Principal, csrf: &str, store: &str) -> Self {
        let who = principal
            .org
            .as_ref()
            .map_or_else(|| principal.actor.clone(), |org| format!("{} · org {org}", principal.actor));
        Self {
            who: Some((
                who,
                principal.role.as_str().to_owned(),
                store.to_owned(),
                principal.role == crate::backend::Role::Admin,
            )),
            csrf: csrf.to_owned(),
        }
    }

    /// The session's CSRF token, for a form.
    pub fn csrf_field(&self) -> String {
        format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&self.csrf))
    }
}

/// An execution's page.
pub(crate) fn execution_href(id: &str) -> String {
    format!("/executions/{}", url_encode(id))
}

/// A whole page: the frame around `body` (already HTML), titled `title`.
pub fn layout(frame: &Frame, title: &str, body: &str) -> Html<String> {
    let mut nav = String::new();
    if let Some((who, role, store, admin)) = &frame.who {
        let audit = if *admin { "<a href=\"/audit\">Audit</a>" } else { "" };
        let _ = write!(
            nav,
            "<nav><a href=\"/\" class=\"brand\">stigmer</a><a href=\"/resources\">Resources</a>\
             <a href=\"/executions\">Executions</a>{audit}<span class=\"who\" title=\"{}\">{} ({})</span>\
             <form method=\"post\" action=\"/logout\" class=\"inline\">{}<button type=\"submit\" id=\"log-out\">Log out</button></form></nav>",
            esc(store),
            esc(who),
            esc(role),
            frame.csrf_field()
        );
    } else {
        nav.push_str("<nav><a href=\"/\" class=\"brand\">stigmer</a></nav>");
    }
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · stigmer</title><link rel=\"stylesheet\" href=\"/assets/console.css\">\
         <script src=\"/assets/console.js\" defer></script></head>\
         <body>{nav}<main><h1>{}</h1>{body}</main></body></html>",
        esc(title),
        esc(title)
    ))
}

/// A table: the header's cells and each row's (all already HTML).
pub fn table(id: &str, header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut out = format!("<table id=\"{}\"><thead><tr>", esc(id));
    for cell in header {
        let _ = write!(out, "<th>{}</th>", esc(cell));
    }
    out.push_str("</tr></thead><tbody>");
    let mut empty = true;
    for row in rows {
        empty = false;
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    if empty {
        let _ = write!(out, "<tr><td colspan=\"{}\" class=\"muted\">Nothing here.</td></tr>", header.len());
    }
    out.push_str("</tbody></table>");
    out
}

/// A link to `href` (a path of this site, already encoded) with `text`.
pub fn link(href: &str, text: &str) -> String {
    format!("<a href=\"{}\">{}</a>", esc(href), esc(text))
}

/// A time as the pages show it.
pub fn time(at: Timestamp) -> String {
    format!("<time datetime=\"{at}\">{}</time>", at.strftime("%Y-%m-%d %H:%M:%S"))
}

/// How long something took, as people read it: `850ms`, `1.2s`, `3m04s`, `2h05m`.
pub fn took(millis: i64) -> String {
    let millis = millis.max(0);
    match millis {
        0..1_000 => format!("{millis}ms"),
        1_000..60_000 => format!("{}.{}s", millis / 1_000, (millis % 1_000) / 100),
        60_000..3_600_000 => format!("{}m{:02}s", millis / 60_000, (millis % 60_000) / 1_000),
        _ => format!("{}h{:02}m", millis / 3_600_000, (millis % 3_600_000) / 60_000),
    }
}

/// An execution's status as a badge.
pub fn status(status: ExecutionStatus) -> String {
    format!("<span class=\"status {0}\">{0}</span>", status.as_str())
}

/// A `<select>` named `name` of `(value, label)` options, `selected` chosen.
pub fn select(name: &str, options: &[(&str, &str)], selected: &str) -> String {
    let mut out = format!("<select name=\"{name}\" id=\"filter-{name}\">");
    for (value, label) in options {
        let chosen = if *value == selected { " selected" } else { "" };
        let _ = write!(out, "<option value=\"{}\"{chosen}>{}</option>", esc(value), esc(label));
    }
    out.push_str("</select>");
    out
}

/// Pagination: one page of `items` (1-based `page`, [`PAGE_SIZE`] each), and the links to the
/// pages around it, keeping `query`'s other parameters.
pub struct Paged<'a, T> {
    /// The items of this page.
    pub items: &'a [T],
    /// The links.
    pub links: String,
}

/// How many items a list shows at once.
pub const PAGE_SIZE: usize = 50;

/// The page `page` of `items`.
pub fn paginate<'a, T>(items: &'a [T], page: usize, base: &str, query: &[(&str, &str)]) -> Paged<'a, T> {
    let (page, start) = page_of(items.len(), page);
    let shown = &items[start.min(items.len())..(start + PAGE_SIZE).min(items.len())];
    Paged { items: shown, links: page_links(items.len(), page, shown.len(), base, query) }
}

/// Which page of `total` items `page` (1-based) is once kept in range, and the index of its
/// first item.
pub fn page_of(total: usize, page: usize) -> (usize, usize) {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let page = page.clamp(1, pages);
    (page, (page - 1) * PAGE_SIZE)
}

/// The line under a list: how many of how many it shows, and the links to the pages around.
pub fn page_links(total: usize, page: usize, shown: usize, base: &str, query: &[(&str, &str)]) -> String {
    let pages = total.div_ceil(PAGE_SIZE).max(1);
    let href = |to: usize| {
        let mut parts: Vec<String> = query
            .iter()
            .filter(|(_, value)| !value.is_empty())
            .map(|(k, v)| format!("{k}={}", url_encode(v)))
            .collect();
        parts.push(format!("page={to}"));
        format!("{base}?{}", parts.join("&"))
    };
    let mut links = format!("<p class=\"pages\">{shown} of {total} · page {page} of {pages}");
    if page > 1 {
        let _ = write!(links, " · {}", link(&href(page - 1), "previous"));
    }
    if page < pages {
        let _ = write!(links, " · {}", link(&href(page + 1), "next"));
    }
    links.push_str("</p>");
    links
}

/// JSON, pretty, escaped for a `<pre>`.
pub fn json(value: &serde_json::Value) -> String {
    esc(&serde_json::to_string_pretty(value).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_for_content_and_attributes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(url_encode("a b/c?d=é"), "a%20b%2Fc%3Fd%3D%C3%A9");
    }

    #[test]
    fn durations_read_at_every_scale() {
        assert_eq!(took(850), "850ms");
        assert_eq!(took(1_250), "1.2s");
        assert_eq!(took(184_000), "3m04s");
        assert_eq!(took(7_500_000), "2h05m");
        assert_eq!(took(-5), "0ms");
    }

    #[test]
    fn pages_keep_the_filters_and_stay_in_range() {
        let items: Vec<u32> = (0..120).collect();
        let paged = paginate(&items, 3, "/executions", &[("status", "running"), ("target", "")]);
        assert_eq!(paged.items, &items[100..]);
        assert!(paged.links.contains("/executions?status=running&amp;page=2"), "{}", paged.links);
        assert!(!paged.links.contains("next"));
        assert_eq!(paginate(&items, 99, "/x", &[]).items.len(), 20, "past the end: the last page");
        assert_eq!(paginate::<u32>(&[], 1, "/x", &[]).items.len(), 0);
    }
}
