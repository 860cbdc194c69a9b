//! Integration tests of tiffin-doctor: every rule on the fixtures and on folders broken on
//! purpose, before and after packing, and `pack` held to the checklist.

mod doctor;
