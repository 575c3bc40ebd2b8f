//! The JSON API and the pages, driven with `oneshot`; one module per concern.

#[path = "../common/mod.rs"]
mod common;

mod cookies;
mod create;
mod jobs;
mod list;
mod live;
mod pages;
mod patch;
mod ranges;
mod service;
