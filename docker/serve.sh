#!/usr/bin/env bash
# Entry point of the serving image.
#
#   serve.sh --wait-for-weights   wait until the weights Job has marked the
#                                 checkpoint complete, then exit (init container)
#   serve.sh [trtllm-serve args]  start trtllm-serve on the checkpoint
#
# Environment:
#   MODEL_ID              Hugging Face repository; the server names the model
#                         after its last part (e.g. DeepSeek-R1-0528)
#   MODEL_ROOT            where the bucket's models/ folder is mounted (/models)
#   WEIGHTS_WAIT_SECONDS  how long to wait for the weights (14400)
set -euo pipefail

: "${MODEL_ID:?MODEL_ID must name the Hugging Face repository}"
MODEL_ROOT="${MODEL_ROOT:-/models}"
WEIGHTS_WAIT_SECONDS="${WEIGHTS_WAIT_SECONDS:-14400}"
POLL_SECONDS="${POLL_SECONDS:-30}"
marker="${MODEL_ROOT}/${MODEL_ID}/.download-complete"

wait_for_weights() {
  local waited=0
  until [[ -f "${marker}" ]]; do
    if (( waited >= WEIGHTS_WAIT_SECONDS )); then
      echo "serve.sh: ${marker} did not appear within ${WEIGHTS_WAIT_SECONDS}s;" \
        "see the weights Job: kubectl logs -l app.kubernetes.io/name=fetch-weights" >&2
      return 1
    fi
    echo "serve.sh: waiting for the weights Job to finish ${MODEL_ID} (${waited}s)"
    sleep "${POLL_SECONDS}"
    waited=$(( waited + POLL_SECONDS ))
  done
}

if [[ "${1:-}" == "--wait-for-weights" ]]; then
  wait_for_weights
  exit 0
fi

wait_for_weights
exec trtllm-serve "${MODEL_ROOT}/${MODEL_ID}" "$@"
