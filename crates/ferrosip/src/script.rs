//! Loading the routing script: the configured file, or the built-in default.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use sip_proxy::ProxyScript;

/// Reads, checks and compiles the script at `path` (the default script without one). The
/// error lists every problem with file:line:column and a caret.
pub(crate) fn load_script(path: Option<&Path>) -> anyhow::Result<Arc<ProxyScript>> {
    let Some(path) = path else {
        return Ok(sip_proxy::default_script());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the routing script {}", path.display()))?;
    let script = sip_proxy::compile(&path.display().to_string(), &text)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Arc::new(script))
}
