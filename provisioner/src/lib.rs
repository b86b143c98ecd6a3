pub mod template;
pub mod cli;
pub mod commands;
pub mod emulator;
pub mod bootstrap;
pub mod k8s;
