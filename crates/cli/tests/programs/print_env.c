// Pass-through: prints the value of the environment variable E2E_ENV_VALUE. (Not a LEAKSCOPE_
// name: those are leakscope's own settings, which it may keep from the program.)
// expect definitely_lost 0 0
// expect indirectly_lost 0 0
// expect possibly_lost 0 0
// expect still_reachable 0 0
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    const char *v = getenv("E2E_ENV_VALUE");
    if (v == NULL)
        v = "(unset)";
    if (write(1, "E2E_ENV_VALUE=", 14) != 14 || write(1, v, strlen(v)) < 0 ||
        write(1, "\n", 1) != 1)
        return 90;
    return 0;
}
