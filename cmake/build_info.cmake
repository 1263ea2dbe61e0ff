# Writes build_info.hpp from build_info.hpp.in with the current git commit (run at build time
# by the stopscan_build_info target). configure_file leaves the file untouched when nothing
# changed, so an unchanged commit does not trigger a rebuild.
execute_process(COMMAND git rev-parse --short=12 HEAD
                WORKING_DIRECTORY "${SOURCE_DIR}"
                OUTPUT_VARIABLE STOPSCAN_GIT_COMMIT OUTPUT_STRIP_TRAILING_WHITESPACE
                ERROR_QUIET RESULT_VARIABLE git_result)
if(NOT git_result EQUAL 0 OR STOPSCAN_GIT_COMMIT STREQUAL "")
  set(STOPSCAN_GIT_COMMIT "unknown")
else()
  execute_process(COMMAND git status --porcelain --untracked-files=no
                  WORKING_DIRECTORY "${SOURCE_DIR}" OUTPUT_VARIABLE dirty ERROR_QUIET)
  if(NOT dirty STREQUAL "")
    string(APPEND STOPSCAN_GIT_COMMIT "-modified")
  endif()
endif()
set(PROJECT_VERSION "${VERSION}")
set(CMAKE_BUILD_TYPE "${BUILD_TYPE}")
configure_file("${SOURCE_DIR}/cmake/build_info.hpp.in" "${OUTPUT}" @ONLY)
