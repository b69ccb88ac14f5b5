#!/usr/bin/env bash
# Rebuilds the vendored browser bundles from the npm registry (see README.md): JsSIP and
# SIP.js at the pinned versions, each bundled with esbuild into one classic script that sets
# a global (JsSIP, SIP), and the licenses of everything the bundles contain.
set -euo pipefail
JSSIP=3.13.8 SIPJS=0.21.2 ESBUILD=0.28.2
out="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
cd "$work"
npm init -y >/dev/null
npm install --no-audit --no-fund --save-exact "jssip@$JSSIP" "sip.js@$SIPJS" "esbuild@$ESBUILD" >/dev/null 2>&1
esbuild=node_modules/.bin/esbuild
# JsSIP 3.13 ships CommonJS sources only (no dist/): bundled with the options of its own
# `npm run build` (npm-scripts.mjs), banner included.
"$esbuild" node_modules/jssip/lib/JsSIP.js --bundle --minify --format=iife --global-name=JsSIP \
  --platform=browser --target=es2015 --supported:template-literal=false --log-level=warning \
  --banner:js="/* JsSIP $JSSIP (npm jssip@$JSSIP, bundled with esbuild $ESBUILD) | MIT | https://jssip.net */" \
  --outfile="$out/jssip.min.js"
# SIP.js 0.21 ships ES modules only: one bundle of its index with the global SIP.
"$esbuild" node_modules/sip.js/lib/index.js --bundle --minify --format=iife --global-name=SIP \
  --platform=browser --target=es2017 --log-level=warning \
  --banner:js="/* SIP.js $SIPJS (npm sip.js@$SIPJS, bundled with esbuild $ESBUILD) | MIT | https://sipjs.com */" \
  --outfile="$out/sip.min.js"
mkdir -p "$out/licenses"
cp node_modules/jssip/LICENSE.md "$out/licenses/jssip-LICENSE.md"
cp node_modules/sip.js/LICENSE.md "$out/licenses/sip.js-LICENSE.md"
# What the JsSIP bundle contains besides JsSIP.
cp node_modules/debug/LICENSE "$out/licenses/debug-LICENSE"
cp node_modules/ms/license.md "$out/licenses/ms-LICENSE.md"
cp node_modules/events/LICENSE "$out/licenses/events-LICENSE"
cp node_modules/sdp-transform/LICENSE "$out/licenses/sdp-transform-LICENSE"
npm ls --all --omit=dev 2>/dev/null | tail -n +2 | grep -v esbuild > "$out/versions.txt" || true
