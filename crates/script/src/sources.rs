//! The texts a script is read from — the main file and the files it includes — placed one
//! after the other at distinct offsets, so that a [`Span`](crate::diag::Span) names a place
//! in any of them.

/// One file: its name in diagnostics, its text, and the offset its text starts at.
#[derive(Debug)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) text: String,
    base: usize,
}

/// Every file read for one script, in the order read; never empty.
#[derive(Debug)]
pub(crate) struct Sources {
    files: Vec<Source>,
}

impl Sources {
    /// The sources of a script whose main file is `name`, at offset 0.
    pub(crate) fn new(name: &str, text: &str) -> Sources {
        let main = Source {
            name: name.to_owned(),
            text: text.to_owned(),
            base: 0,
        };
        Sources { files: vec![main] }
    }

    /// Adds a file after the others; returns the offset its text starts at.
    pub(crate) fn add(&mut self, name: String, text: String) -> usize {
        let last = &self.files[self.files.len() - 1];
        // One past the end, so that the end of every text is an offset of its own.
        let base = last.base + last.text.len() + 1;
        self.files.push(Source { name, text, base });
        base
    }

    /// The file `offset` is in, and the offset within its text (at most its length).
    pub(crate) fn locate(&self, offset: usize) -> (&Source, usize) {
        let i = self.files.partition_point(|f| f.base <= offset) - 1;
        let file = &self.files[i];
        (file, (offset - file.base).min(file.text.len()))
    }

    /// The file and line (from 1) `offset` is on.
    pub(crate) fn line(&self, offset: usize) -> (&str, usize) {
        let (file, at) = self.locate(offset);
        let newlines = file.text.as_bytes()[..at].iter().filter(|&&b| b == b'\n');
        (&file.name, newlines.count() + 1)
    }
}
