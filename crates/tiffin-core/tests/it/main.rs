//! Integration tests of tiffin-core: pack, verify and inspect on the committed fixtures, tampered
//! packages and hand-made hostile archives.

mod examples;
mod hostile;
mod pack;
mod parity;
mod sign;
mod source;
mod support;
mod tamper;
