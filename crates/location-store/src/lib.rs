//! Binding persistence (work in progress).
