//! The end-to-end and fault tests of parallax (in `tests/`): the real web-ui, media-worker and
//! video-worker binaries started as separate processes by the launcher
//! (`parallax_launcher::Fleet`) and driven through web-ui's public HTTP API, on the local
//! adapters and on the AWS adapters against moto. This library is empty: the crate exists for
//! its tests.
