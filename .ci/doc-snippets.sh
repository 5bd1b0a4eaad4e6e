#!/usr/bin/env bash
# Compiles every C# block of docs/*.md marked `<!-- compiled by .ci/doc-snippets.sh -->` (the line
# before the block) as the Program.cs of a new console app against the packed packages, so a
# snippet that stops compiling (a missing using, a renamed API) fails CI; a block marked
# `<!-- compiled by .ci/doc-snippets.sh as a test -->` becomes an xunit project and its tests must pass. Run from the repository
# root after `dotnet pack -o artifacts/packages`.
set -euo pipefail
repo=$(pwd)
feed="$repo/artifacts/packages"
version=$(ls "$feed"/Scheduling.Core.[0-9]*.nupkg | head -1 | sed 's/.*Scheduling\.Core\.\(.*\)\.nupkg/\1/')
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
source "$repo/.ci/packed-feed.sh" "$feed"
count=0
for doc in "$repo"/docs/*.md; do
  awk -v dir="$work" -v name="$(basename "$doc" .md)" '
    /^<!-- compiled by .ci\/doc-snippets.sh -->$/ { marked = 1; suffix = ".cs"; next }
    /^<!-- compiled by .ci\/doc-snippets.sh as a test -->$/ { marked = 1; suffix = ".test.cs"; next }
    marked && $0 == "```csharp" { inside = 1; n++; file = dir "/" name "-" n suffix; marked = 0; next }
    inside && $0 == "```" { inside = 0; close(file); next }
    inside { print > file; next }
    { marked = 0 }' "$doc"
done
for snippet in "$work"/*.cs; do
  [ -e "$snippet" ] || break
  name=$(basename "$snippet" .cs); name=${name%.test}
  test=false; [[ "$snippet" == *.test.cs ]] && test=true
  mkdir -p "$name" && mv "$snippet" "$name/Program.cs"
  refs='<PackageReference Include="Scheduling.Postgres" Version="'$version'" /><PackageReference Include="Microsoft.Extensions.Hosting" Version="10.0.0" />'
  grep -q "^using Scheduling.Stagger;" "$name/Program.cs" && refs+='<PackageReference Include="Scheduling.Stagger" Version="'$version'" />'
  grep -q "^using Scheduling.Testing;" "$name/Program.cs" && refs+='<PackageReference Include="Scheduling.Testing" Version="'$version'" />'
  grep -q "^using Microsoft.EntityFrameworkCore;" "$name/Program.cs" && refs+='<PackageReference Include="Npgsql.EntityFrameworkCore.PostgreSQL" Version="10.0.3" />'
  kind='<OutputType>Exe</OutputType>'
  if $test; then
    kind='<IsTestProject>true</IsTestProject>'
    refs+='<PackageReference Include="Microsoft.NET.Test.Sdk" Version="18.0.1" /><PackageReference Include="xunit" Version="2.9.3" /><PackageReference Include="xunit.runner.visualstudio" Version="3.1.5" />'
  fi
  cat > "$name/$name.csproj" <<XML
<Project Sdk="Microsoft.NET.Sdk">
  <PropertyGroup>$kind<TargetFramework>net10.0</TargetFramework><ImplicitUsings>enable</ImplicitUsings><Nullable>enable</Nullable><TreatWarningsAsErrors>true</TreatWarningsAsErrors></PropertyGroup>
  <ItemGroup>$refs</ItemGroup>
</Project>
XML
  if ! out=$(dotnet build "$name" -v quiet -nologo 2>&1); then
    echo "docs snippet $name does not compile:"; grep -E "error" <<<"$out" | sort -u | head -20; exit 1
  fi
  if $test; then
    if ! out=$(dotnet test "$name" --no-build -nologo 2>&1); then echo "docs snippet $name: its tests fail:"; tail -30 <<<"$out"; exit 1; fi
    echo "ok: docs/${name%-*}.md, snippet ${name##*-} compiles and its tests pass"
  else
    echo "ok: docs/${name%-*}.md, snippet ${name##*-} compiles"
  fi
  count=$((count + 1))
done
[ "$count" -gt 0 ] || { echo "no marked snippets found"; exit 1; }
