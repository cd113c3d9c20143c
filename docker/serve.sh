#!/usr/bin/env bash
# Entry point of the serving image.
#
#   serve.sh --wait-for-weights   (init container) wait until the checkpoint in
#                                 the bucket is marked complete, then copy it to
#                                 the node's local SSD unless it is there already
#   serve.sh [trtllm-serve args]  start trtllm-serve on the local SSD copy (or,
#                                 without one, on the bucket's)
#
# Environment:
#   MODEL_ID              Hugging Face repository; the server names the model
#                         after its last part (e.g. DeepSeek-R1-0528)
#   MODEL_ROOT            where the bucket's checkpoint folder is mounted (/models)
#   NODE_CACHE            the node's local-SSD copy (a hostPath; empty: none)
#   WEIGHTS_WAIT_SECONDS  how long to wait for the weights (14400)
#   TIMELINE_FILE         this pod's timeline document in the bucket (optional)
set -euo pipefail

: "${MODEL_ID:?MODEL_ID must name the Hugging Face repository}"
MODEL_ROOT="${MODEL_ROOT:-/models}"
NODE_CACHE="${NODE_CACHE:-}"
WEIGHTS_WAIT_SECONDS="${WEIGHTS_WAIT_SECONDS:-14400}"
POLL_SECONDS="${POLL_SECONDS:-15}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
marker="${MODEL_ROOT}/${MODEL_ID}/.download-complete"

timeline() {
  python3 "${HERE}/node_cache.py" record "$1" "$2" || true
}

wait_for_weights() {
  local waited=0
  until [[ -f "${marker}" ]]; do
    if (( waited >= WEIGHTS_WAIT_SECONDS )); then
      echo "serve.sh: ${marker} did not appear within ${WEIGHTS_WAIT_SECONDS}s;" \
        "see the weights staging build: gcloud builds list --region REGION" >&2
      timeline weights-wait failed
      return 1
    fi
    echo "serve.sh: waiting for the staged checkpoint ${MODEL_ID} (${waited}s)"
    sleep "${POLL_SECONDS}"
    waited=$(( waited + POLL_SECONDS ))
  done
}

if [[ "${1:-}" == "--wait-for-weights" ]]; then
  # The first container of the pod: the serving image has been pulled by now.
  timeline image-pulled mark
  timeline weights-wait start
  wait_for_weights
  timeline weights-wait end
  if [[ -n "${NODE_CACHE}" ]]; then
    exec python3 "${HERE}/node_cache.py" sync "${MODEL_ROOT}/${MODEL_ID}" "${NODE_CACHE}/${MODEL_ID}"
  fi
  exit 0
fi

checkpoint="${MODEL_ROOT}/${MODEL_ID}"
if [[ -n "${NODE_CACHE}" && -f "${NODE_CACHE}/${MODEL_ID}/.download-complete" ]]; then
  checkpoint="${NODE_CACHE}/${MODEL_ID}"
else
  wait_for_weights
fi
echo "serve.sh: serving ${checkpoint}"
timeline server start
if [[ -n "${TIMELINE_FILE:-}" ]]; then
  # Records `ready` once /health answers 200; it outlives the exec below.
  python3 "${HERE}/node_cache.py" await-ready "http://127.0.0.1:${SERVER_PORT:-8000}/health" &
fi
exec trtllm-serve "${checkpoint}" "$@"
