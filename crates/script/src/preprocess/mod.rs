//! Kamailio's preprocessor, done while lexing: `#!define` and its kin, `#!ifdef` …
//! `#!endif`, `#!include_file`, and defined names replaced by their values
//! (docs/routing.md, "Preprocessor directives").

mod branches;
mod defines;
mod directive;

use std::io;
use std::path::{Component, Path, PathBuf};

use crate::ast::plain;
use crate::diag::{Error, Span};
use crate::lexer::{Lexer, Tok, Token};
use crate::sources::Sources;
use branches::Branches;
use defines::Defines;
use directive::Directive;

/// Reads a file to include, given its path.
pub(crate) type Load<'a> = &'a dyn Fn(&Path) -> io::Result<String>;

/// How deeply includes may nest.
const MAX_INCLUDES: usize = 10;

/// The tokens of the main file of `sources`, ending with `Tok::Eof`: directives done,
/// skipped branches left out, included files (read with `load`, and added to `sources`)
/// in their place, defined names replaced. The first error stops it.
pub(crate) fn expand(sources: &mut Sources, load: Load<'_>) -> Result<Vec<Token>, Error> {
    let (main, _) = sources.locate(0);
    let (name, text) = (main.name.clone(), main.text.clone());
    let mut pp = Preprocessor {
        sources,
        load,
        defines: Defines::default(),
        open: vec![PathBuf::from(name)],
        out: Vec::new(),
    };
    let eof = pp.file(&text, 0)?;
    pp.out.push(eof);
    Ok(pp.out)
}

struct Preprocessor<'a> {
    sources: &'a mut Sources,
    load: Load<'a>,
    defines: Defines,
    /// The files being read, the main one first.
    open: Vec<PathBuf>,
    out: Vec<Token>,
}

impl Preprocessor<'_> {
    /// Reads the file `text`, at offset `base` of the sources; returns its `Tok::Eof`.
    fn file(&mut self, text: &str, base: usize) -> Result<Token, Error> {
        let mut lexer = Lexer::new(text, base);
        let mut branches = Branches::default();
        loop {
            let t = if branches.active() {
                lexer.next_token()?
            } else {
                lexer.skip_to_directive()
            };
            match &t.tok {
                Tok::Eof => {
                    branches.finish()?;
                    return Ok(t);
                }
                Tok::Directive(d) => self.directive(d, t.span, &mut branches)?,
                Tok::Ident(w) if w == "include_file" || w == "import_file" => {
                    let optional = w == "import_file";
                    let path = lexer.next_token()?;
                    let Some(name) = file_name(&path.tok) else {
                        let msg = format!("expected a quoted file name after `{w}`");
                        return Err(Error::new(path.span, msg));
                    };
                    self.include(name, optional, t.span.to(path.span))?;
                }
                _ => self.defines.substitute(t, &mut self.out)?,
            }
        }
    }

    /// The directive `text` (after `#!`) at `span`.
    fn directive(&mut self, text: &str, span: Span, branches: &mut Branches) -> Result<(), Error> {
        if !branches.active() && !directive::is_conditional(text) {
            return Ok(());
        }
        match directive::parse(text, span.start)? {
            Directive::Marker => {}
            Directive::Define {
                how,
                name,
                value,
                at,
            } => self.defines.define(how, name, value, at, span)?,
            Directive::Undef(name) => self.defines.undef(&name),
            Directive::If { name, defined } => {
                let word = if defined { "ifdef" } else { "ifndef" };
                branches.open(word, self.defines.contains(&name) == defined, span);
            }
            Directive::Else => branches.turn(span)?,
            Directive::Endif => branches.close(span)?,
            Directive::Include { path, optional } => self.include(&path, optional, span)?,
        }
        Ok(())
    }

    /// Reads the file at `path` (relative to the including file's folder) in place of the
    /// include at `at`; with `optional`, a file not found is skipped.
    fn include(&mut self, path: &str, optional: bool, at: Span) -> Result<(), Error> {
        let current = &self.open[self.open.len() - 1];
        let full = current.parent().unwrap_or(Path::new("")).join(path);
        if self.open.iter().any(|p| same_file(p, &full)) {
            let chain: Vec<String> = self.open.iter().map(|p| p.display().to_string()).collect();
            let msg = format!(
                "include cycle: {} -> {}",
                chain.join(" -> "),
                full.display()
            );
            return Err(Error::new(at, msg));
        }
        if self.open.len() > MAX_INCLUDES {
            let msg = format!("includes nest more than {MAX_INCLUDES} deep");
            return Err(Error::new(at, msg));
        }
        let text = match (self.load)(&full) {
            Ok(text) => text,
            Err(e) if optional && e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                let msg = format!("cannot include `{}`: {e}", full.display());
                return Err(Error::new(at, msg));
            }
        };
        let base = self.sources.add(full.display().to_string(), text.clone());
        self.open.push(full);
        self.file(&text, base)?;
        self.open.pop();
        Ok(())
    }
}

/// True when `a` and `b` are one path once `.` and `dir/..` are taken out.
fn same_file(a: &Path, b: &Path) -> bool {
    fn lexical(path: &Path) -> Vec<Component<'_>> {
        let mut out = Vec::new();
        for c in path.components() {
            match c {
                Component::CurDir => {}
                Component::ParentDir if matches!(out.last(), Some(Component::Normal(_))) => {
                    out.pop();
                }
                c => out.push(c),
            }
        }
        out
    }
    lexical(a) == lexical(b)
}

/// The file name of `include_file "NAME"`: a string without variables.
fn file_name(tok: &Tok) -> Option<&str> {
    match tok {
        Tok::Str(parts) => plain(parts),
        _ => None,
    }
}
