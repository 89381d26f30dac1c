//! The manifest loader and validator on arbitrary bytes, as `stigmer validate -f -` reads them,
//! and every diagnostic rendered with its snippet: none of it may panic or hang.

#![no_main]

use libfuzzer_sys::fuzz_target;
use stigmer::cli::{Style, render_diagnostic};
use stigmer::manifest::{InputPath, load};
use stigmer::validate::{NoResources, validate};

fuzz_target!(|data: &[u8]| {
    let set = load(&[InputPath::Stdin], &mut &data[..]);
    let validation = validate(&set, &NoResources);
    for diagnostic in set.diagnostics.iter().chain(&validation.diagnostics) {
        let text = render_diagnostic(&set, diagnostic, Style::new(false));
        assert!(!text.is_empty(), "a diagnostic renders to something");
    }
});
