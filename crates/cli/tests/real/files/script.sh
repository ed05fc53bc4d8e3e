# Run by the real-program suite (tests/real_programs.rs) with bash, natively and under
# leakscope; its output must be the same. Builtins only: programs bash executes run untracked.
set -u
declare -A counts
for word in the quick brown fox jumps over the lazy dog the end; do
  counts[$word]=$(( ${counts[$word]:-0} + 1 ))
done
for key in brown dog end fox jumps lazy over quick the; do
  printf '%s=%s ' "$key" "${counts[$key]}"
done
echo
fib() {
  local n=$1 a=0 b=1 i
  for (( i = 0; i < n; i++ )); do
    (( b = a + b, a = b - a ))
  done
  echo "$a"
}
echo "fib 60 = $(fib 60)"
lines=()
for (( i = 0; i < 20000; i++ )); do
  lines+=("line $i")
  (( ${#lines[@]} > 500 )) && lines=()
done
echo "${#lines[@]} lines left"
text="The Quick Brown Fox"
echo "${text,,} ${text^^} ${text// /_} ${#text}"
while read -r a b; do
  echo "$b $a"
done <<'END'
one 1
two 2
END
case "$text" in
  *Fox) echo matched ;;
  *) echo "no match" ;;
esac
