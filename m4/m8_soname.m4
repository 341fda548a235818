# M8_FIND_SONAME(DEFINE, LIBS, FUNCTION, LIBNAME)
# The run-time name (SONAME) of a library loaded with dlopen on first use
# (doc/design.md#libraries-loaded-on-first-use): links a program calling
# FUNCTION with LIBS (the pkg-config LIBS), reads the NEEDED entry that starts
# with "LIBNAME.so" with objdump -p, and AC_DEFINEs DEFINE to it ("libcurl.so.4").
# Stops configure with one line when that fails.
AC_DEFUN([M8_FIND_SONAME], [
  AS_IF([test -z "$OBJDUMP" || test "x$OBJDUMP" = xfalse],
    [AC_CHECK_TOOL([OBJDUMP], [objdump], [false])])
  AC_MSG_CHECKING([for the run-time name of $4])
  m8_save_LIBS=$LIBS
  LIBS="$2 $LIBS"
  m8_soname=
  AC_LINK_IFELSE([AC_LANG_CALL([], [$3])],
    [m8_soname=`$OBJDUMP -p conftest$EXEEXT 2>/dev/null |
      awk '$[]1 == "NEEDED" && $[]2 ~ /^$4\.so\./ { print $[]2; exit }'`])
  LIBS=$m8_save_LIBS
  AS_IF([test -z "$m8_soname"], [
    AC_MSG_RESULT([not found])
    AC_MSG_ERROR([cannot tell the run-time name of $4: linking a call to $3 with "$2" and reading its NEEDED entries with "$OBJDUMP -p" failed (install binutils and the library's -dev package); fcgi-m8 loads $4 by that name on first use])
  ])
  AC_MSG_RESULT([$m8_soname])
  AC_DEFINE_UNQUOTED([$1], ["$m8_soname"],
    [The run-time name of $4, loaded on first use (doc/design.md#libraries-loaded-on-first-use)])
])
