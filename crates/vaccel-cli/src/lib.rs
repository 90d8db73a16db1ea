//! The file formats of `vaccel` as a library (`vaccel_cli::io`): the
//! command line's readers and writers, also driven by the fuzz targets.

pub mod io;
