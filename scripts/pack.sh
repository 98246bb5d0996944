#!/usr/bin/env bash
# Packs the library packages (Trainer.Models, Trainer.Data, Trainer.Recipes) and the `trainer`
# .NET tool (Trainer.Cli) into artifacts/packages, where examples/nuget.config looks for them.
#   scripts/pack.sh            version from Directory.Build.props (0.1.0)
#   scripts/pack.sh 0.1.1-dev  another version (each version is cached by NuGet once restored)
set -euo pipefail
cd "$(dirname "$0")/.."
out=artifacts/packages
mkdir -p "$out"
version_args=()
[ $# -ge 1 ] && version_args=("-p:Version=$1")
dotnet build Trainer.sln -c Release "${version_args[@]}"
for project in src/Models src/Data src/Recipes src/Cli; do
  dotnet pack "$project" -c Release --no-build "${version_args[@]}" -o "$out"
done
ls -l "$out"
