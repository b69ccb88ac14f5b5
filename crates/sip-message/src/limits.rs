//! Size limits enforced while parsing.

/// Bounds that protect the parser from hostile input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest accepted message, headers and body, in bytes.
    pub max_message_size: usize,
    /// Most header fields (lines, not comma-separated values) in one message.
    pub max_headers: usize,
    /// Longest physical line in the header section, in bytes.
    pub max_line_length: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: 65_535,
            max_headers: 256,
            max_line_length: 8_192,
        }
    }
}
