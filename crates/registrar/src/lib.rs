//! SIP registrar (work in progress).
