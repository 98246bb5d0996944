#!/usr/bin/env bash
# The project's test command (README, .ci/run): installs what the suite needs when it is missing,
# then runs every test. The torchvision compatibility tests compare against Debian's
# python3-torch and python3-torchvision under /usr/bin/python3 (a minute or two to install once);
# the ONNX import tests read the pretrained model independently with python3-onnx; the
# data-parallel tests start 2 ranks with Open MPI (openmpi-bin).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
missing=()
/usr/bin/python3 -c "import torchvision, onnx" >/dev/null 2>&1 || missing+=(python3-torch python3-torchvision python3-onnx)
{ command -v mpirun >/dev/null && dpkg -s openmpi-bin >/dev/null 2>&1; } || missing+=(openmpi-bin)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (Debian packages) for the torchvision, ONNX and data-parallel tests"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
# The CUDA tests (trait Device=cuda) need a GPU and the CUDA build: scripts/gpu-check.sh runs them
# (TRAINER_TEST_CUDA=1). Here they are left out, so the totals count only tests that ran.
if [ "${TRAINER_TEST_CUDA:-}" = 1 ]; then
  exec dotnet test -c Release "$@"
fi
echo "CUDA tests: left out of this run (they need an NVIDIA GPU and the CUDA build: scripts/gpu-check.sh)"
exec dotnet test -c Release --filter "Device!=cuda" "$@"
