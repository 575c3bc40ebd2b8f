//! parallax's media layer: everything that runs ffmpeg or ffprobe, or reads a container, lives
//! here, so that the workers and the engine share one process wrapper and one view of a file.

pub mod process;
