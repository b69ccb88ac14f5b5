//! Loading the routing script: the configured file, or the built-in default.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sip_proxy::ProxyScript;

/// Reads, checks and compiles the script at `path` (the default script without one), and
/// the files it includes. The error lists every problem with file:line:column and a caret.
pub(crate) fn load_script(path: Option<&Path>) -> anyhow::Result<Arc<ProxyScript>> {
    let Some(path) = path else {
        return Ok(sip_proxy::default_script());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the routing script {}", path.display()))?;
    let read = |p: &Path| std::fs::read_to_string(p);
    let script = sip_proxy::compile_with(&path.display().to_string(), &text, &read)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Arc::new(script))
}
