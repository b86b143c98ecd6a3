pub mod template;
pub mod cli;
pub mod commands;
pub mod emulator;
