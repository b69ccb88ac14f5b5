//! The `#!ifdef` … `#!else` … `#!endif` branches open in one file.

use crate::diag::{Error, Span};

/// One `#!ifdef` or `#!ifndef` not yet closed.
#[derive(Debug)]
struct Branch {
    /// The directive that opened it.
    at: Span,
    word: &'static str,
    /// The text around it is read.
    outer: bool,
    /// Its condition holds.
    holds: bool,
    /// Past its `#!else`.
    turned: bool,
}

/// The open branches, innermost last.
#[derive(Debug, Default)]
pub(crate) struct Branches(Vec<Branch>);

impl Branches {
    /// True when the text here is read, not skipped.
    pub(crate) fn active(&self) -> bool {
        self.0.last().is_none_or(|b| b.outer && b.holds != b.turned)
    }

    /// `#!ifdef` (`word` "ifdef") or `#!ifndef` at `at`, whose condition `holds`.
    pub(crate) fn open(&mut self, word: &'static str, holds: bool, at: Span) {
        let outer = self.active();
        self.0.push(Branch {
            at,
            word,
            outer,
            holds,
            turned: false,
        });
    }

    /// `#!else` at `at`.
    pub(crate) fn turn(&mut self, at: Span) -> Result<(), Error> {
        match self.0.last_mut() {
            None => Err(Error::new(at, "`#!else` without `#!ifdef`")),
            Some(b) if b.turned => {
                let msg = format!("second `#!else` for one `#!{}`", b.word);
                Err(Error::new(at, msg))
            }
            Some(b) => {
                b.turned = true;
                Ok(())
            }
        }
    }

    /// `#!endif` at `at`.
    pub(crate) fn close(&mut self, at: Span) -> Result<(), Error> {
        match self.0.pop() {
            Some(_) => Ok(()),
            None => Err(Error::new(at, "`#!endif` without `#!ifdef`")),
        }
    }

    /// At the end of the file: every branch must be closed.
    pub(crate) fn finish(&self) -> Result<(), Error> {
        match self.0.last() {
            Some(b) => Err(Error::new(
                b.at,
                format!("`#!{}` without `#!endif`", b.word),
            )),
            None => Ok(()),
        }
    }
}
