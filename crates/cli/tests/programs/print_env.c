// Pass-through: prints the value of the environment variable LEAKSCOPE_E2E_VALUE.
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    const char *v = getenv("LEAKSCOPE_E2E_VALUE");
    if (v == NULL)
        v = "(unset)";
    if (write(1, "LEAKSCOPE_E2E_VALUE=", 20) != 20 || write(1, v, strlen(v)) < 0 ||
        write(1, "\n", 1) != 1)
        return 90;
    return 0;
}
