//! plugboard: a Kubernetes operator that connects a SaaS product's tenants to their accounts
//! in external apps, declaratively.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod controller;
pub mod crd;
pub mod error;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod provider;
pub mod schemas;
pub mod telemetry;
pub mod templates;
pub mod web;
