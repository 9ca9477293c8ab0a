//! Shared harness for the end-to-end and crash tests: a seeded workload
//! with its reference model, and the crash-state generator over a
//! recording device.

pub mod blocks;
pub mod checker;
pub mod cli;
pub mod craft;
pub mod daemon;
pub mod damage;
pub mod diod;
pub mod fsmodel;
pub mod fuzzrun;
pub mod model;
pub mod mutate;
pub mod powercut;
pub mod py;
pub mod rng;
pub mod vm;
pub mod workloads;
