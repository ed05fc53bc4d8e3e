// Exits with code 7 and leaks nothing (pass-through of the exit code).
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
// expect exit-code 7
int main(void) { return 7; }
