//! Integration tests of tiffin-store: the local store under contention and damage, push and pull
//! against an in-process registry, and container images built from stored packages.

mod image;
mod oci;
mod store;
