#!/usr/bin/env bash
# Starts trtllm-serve on a checkpoint that the weights Job has finished
# copying into the bucket (mounted at MODEL_ROOT), then hands over to it.
#
#   MODEL_ID          Hugging Face repository, also the served model name
#   MODEL_ROOT        where the bucket's models/ folder is mounted (/models)
#   WEIGHTS_WAIT_SECONDS  how long to wait for the download to complete
#   remaining args    passed to trtllm-serve unchanged
set -euo pipefail

: "${MODEL_ID:?MODEL_ID must name the Hugging Face repository}"
MODEL_ROOT="${MODEL_ROOT:-/models}"
WEIGHTS_WAIT_SECONDS="${WEIGHTS_WAIT_SECONDS:-14400}"
marker="${MODEL_ROOT}/${MODEL_ID}/.download-complete"

waited=0
until [[ -f "${marker}" ]]; do
  if (( waited >= WEIGHTS_WAIT_SECONDS )); then
    echo "serve.sh: ${marker} did not appear within ${WEIGHTS_WAIT_SECONDS}s;" \
      "check the weights Job: kubectl logs job/<prefix>-fetch-weights" >&2
    exit 1
  fi
  echo "serve.sh: waiting for the weights Job to finish ${MODEL_ID} (${waited}s)"
  sleep 30
  waited=$(( waited + 30 ))
done

# Run from MODEL_ROOT with the repository ID as a relative path: the server
# loads the local copy and reports the Hugging Face ID as the model name.
cd "${MODEL_ROOT}"
exec trtllm-serve "${MODEL_ID}" "$@"
