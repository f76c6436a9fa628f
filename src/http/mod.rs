//! HTTP plumbing shared by every route: extractors, the audit record, the middleware stack.

pub mod audit;
pub mod extract;
pub mod stack;
pub mod stream;
