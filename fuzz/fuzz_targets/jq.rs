//! Compiling runtime expressions (jq, with the runtime variables in scope), as validation and
//! the runner do, on arbitrary text: an error, never a panic, and its offset inside the text.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(code) = std::str::from_utf8(data) else { return };
    if let Err(error) = stigmer::expr::check(code)
        && let Some(offset) = error.offset
    {
        assert!(offset <= code.chars().count(), "offset {offset} is past the end of {code:?}");
    }
});
