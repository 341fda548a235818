#include "fcgim8.h"
int main(void)
{
    return 0;
}
