#!/usr/bin/env bash
# The EU DSS validator (Validate.java) for kyso's tests: builds it with Maven when its sources changed or its
# dependencies left ~/.m2 (the first build downloads DSS from Maven Central, ~1 min; later ones are cached),
# then runs it. `run.sh --build` only builds. Exit 3: Maven or Java is not installed (the caller skips).
#   run.sh ROOT.cer [--at ISO-INSTANT] FILE.pdf...   → one JSON line per PDF
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
for tool in mvn java; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "dss: '$tool' is not installed (deploy/bootstrap.sh installs maven and a JDK 17)" >&2
    exit 3
  fi
done
classes=target/classes/vn/kyso/dss/Validate.class
cp_file=target/classpath.txt
stale=0
if [[ ! -f $classes || ! -f $cp_file || pom.xml -nt $classes || src/main/java/vn/kyso/dss/Validate.java -nt $classes ]]; then
  stale=1
else
  IFS=: read -r -a jars <"$cp_file" || true  # no newline at the end: read says 1
  for jar in "${jars[@]}"; do [[ -f $jar ]] || { stale=1; break; }; done
fi
if ((stale)); then
  # flock: two test processes never build into the same target/ at once
  (
    flock 9
    mvn -B -q -Dstyle.color=never compile dependency:build-classpath -Dmdep.outputFile="$cp_file" >&2
  ) 9>"$here/.build.lock"
fi
[[ ${1:-} == --build ]] && exit 0
exec java -Dorg.slf4j.simpleLogger.defaultLogLevel=error -cp "target/classes:$(cat "$cp_file")" vn.kyso.dss.Validate "$@"
