//! Models per job: which depth models this worker holds, and what it does with a task for a
//! model it does not hold.
//!
//! A job names a catalogue model in `settings.model` (or none: any worker's default). Every
//! worker reads the one segments queue; the first to receive a task for a model it does not
//! hold passes it on: it keeps the message hidden for a short pause, sends a copy to the same
//! queue and deletes the original (a copy starts with a fresh receive count, so passing on
//! never pushes a task towards the dead-letter queue; a crash between the two leaves a
//! duplicate, which is harmless like every repeated task). Workers renew a note per held
//! model (`keys::model_holder`); when no note is fresh, no running worker holds the model,
//! so the job shows "waiting for a worker with model X" (`Job::waiting`), and fails with
//! `no-worker-for-model` once the wait outlasts the deadline. The design, and what a large
//! mixed fleet would change (a segments queue per model), is in docs/architecture.md.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub use parallax_core::holders::{
    held_by_a_running_worker, held_by_a_running_worker_at, renew_notes, renew_notes_on,
    HolderTiming,
};

use crate::converter::SegmentConverter;

/// The depth models a worker holds: its default (used for jobs that name none) and any
/// number of catalogue models by name.
#[derive(Debug, Clone)]
pub struct HeldModels {
    default: Arc<dyn SegmentConverter>,
    default_name: Option<String>,
    named: BTreeMap<String, Arc<dyn SegmentConverter>>,
    known: Option<BTreeSet<String>>,
}

/// Which converter serves a task, or why none here does.
#[derive(Debug)]
pub enum Pick<'a> {
    /// This worker holds the model.
    Held(&'a Arc<dyn SegmentConverter>),
    /// A catalogue model this worker does not hold.
    NotHeld(&'a str),
    /// A name the catalogue does not know.
    Unknown(&'a str),
}

impl HeldModels {
    /// Only a default model, known by `name` in the catalogue when it is one of its files.
    pub fn new(default: Arc<dyn SegmentConverter>, name: Option<String>) -> Self {
        let mut named = BTreeMap::new();
        if let Some(n) = &name {
            named.insert(n.clone(), default.clone());
        }
        Self {
            default,
            default_name: name,
            named,
            known: None,
        }
    }

    /// Also holds `name`.
    pub fn with(mut self, name: impl Into<String>, converter: Arc<dyn SegmentConverter>) -> Self {
        self.named.insert(name.into(), converter);
        self
    }

    /// The names a job may ask for (the catalogue's); without it, any name not held counts
    /// as known.
    pub fn with_known(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.known = Some(names.into_iter().collect());
        self
    }

    /// The catalogue names of the models held.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.named.keys().map(String::as_str)
    }

    /// The default model's catalogue name, if it has one.
    pub fn default_name(&self) -> Option<&str> {
        self.default_name.as_deref()
    }

    /// The converter for a job's `settings.model`.
    pub fn pick<'a>(&'a self, model: Option<&'a str>) -> Pick<'a> {
        match model {
            None => Pick::Held(&self.default),
            Some(name) => match self.named.get(name) {
                Some(c) => Pick::Held(c),
                None if self.known.as_ref().is_some_and(|k| !k.contains(name)) => {
                    Pick::Unknown(name)
                }
                None => Pick::NotHeld(name),
            },
        }
    }
}
