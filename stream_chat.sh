#!/usr/bin/env bash
# Streams DeepSeek-R1's answer to a question from the port-forwarded endpoint,
# shows its reasoning apart from the answer, and prints the timings.
#
#   ./stream_chat.sh "Which is larger, 9.9 or 9.11?" [clients.chat options]
#
# Start the port-forward first: $(pulumi stack output portForward) &
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${here}/.venv/bin/python"
if [[ ! -x "${python}" ]]; then
  python="python3"
fi
cd "${here}"
exec "${python}" -m clients.chat "$@"
