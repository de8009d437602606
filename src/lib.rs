//! plugboard: a Kubernetes operator that connects a SaaS product's tenants to their accounts
//! in external apps, declaratively.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod cli;
pub mod connector_check;
pub mod controller;
pub mod crd;
pub mod dev;
pub mod error;
pub mod leader;
pub mod meta;
pub mod metrics;
pub mod operator;
pub mod provider;
pub mod redact;
pub mod schemas;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod validate;
pub mod web;
