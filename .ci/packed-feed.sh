# Sourced by CI scripts, in the folder of a new app: a nuget.config that takes Scheduling.* only
# from the packages just packed ("$1") and everything else from nuget.org, and a package folder of
# its own (a global cache may hold an older build of the same version).
cat > nuget.config <<XML
<configuration>
  <packageSources><clear /><add key="local" value="$1" /><add key="nuget.org" value="https://api.nuget.org/v3/index.json" /></packageSources>
  <packageSourceMapping>
    <packageSource key="local"><package pattern="Scheduling.*" /></packageSource>
    <packageSource key="nuget.org"><package pattern="*" /></packageSource>
  </packageSourceMapping>
</configuration>
XML
export NUGET_PACKAGES="$PWD/nuget-packages"
