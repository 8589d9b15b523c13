#!/usr/bin/env bash
# The layers (DESIGN.md section 2): core <- base (os, tzdb, sched, exec, store, coord)
# <- node (executor, server) <- api <- cli.  An #include that points up a layer, or
# sideways between the executor and the control plane (they meet only through coord),
# fails this check.  Run by ctest (test "layers"); prints every offending line.
set -uo pipefail
cd "$(dirname "$0")/.."
rank() {
  case "$1" in
    core) echo 0 ;;
    os|tzdb|sched|exec|store|coord) echo 1 ;;
    executor|server) echo 2 ;;
    api) echo 3 ;;
    cli) echo 4 ;;
    *) echo 9 ;;
  esac
}
bad=0
for dir in src/*/; do
  mod=$(basename "$dir")
  mine=$(rank "$mod")
  while IFS=: read -r file line text; do
    target=$(sed -E 's/.*#include "(\.\.\/)?([a-z]+)\/.*/\2/' <<<"$text")
    theirs=$(rank "$target")
    if [ "$theirs" -gt "$mine" ] || { [ "$mine" = 2 ] && [ "$target" != "$mod" ] && [ "$theirs" = 2 ]; } \
       || { [ "$mod" = core ] && [ "$target" != core ]; }; then
      echo "$file:$line: $mod includes $target: $text"
      bad=1
    fi
  done < <(grep -n -E '#include "\.\./[a-z]+/' -r "$dir" --include='*.[ch]' | sed -E 's/^([^:]+):([0-9]+):/\1:\2:/')
done
if [ "$bad" -ne 0 ]; then
  echo "includes point up a layer (core <- base <- node <- api <- cli)"
  exit 1
fi
echo "layers: every include points down"
