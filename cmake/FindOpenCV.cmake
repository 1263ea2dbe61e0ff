# FindOpenCV.cmake
# ----------------
#
# Why this module exists
#   stopscan depends only on Debian's split OpenCV packages
#     libopencv-core-dev libopencv-imgproc-dev libopencv-imgcodecs-dev libopencv-flann-dev
#   (~48 MB). They install headers (/usr/include/opencv4) and libopencv_<module>.so, but
#   NOT OpenCVConfig.cmake and NOT opencv4.pc; only the full libopencv-dev (~800 MB, pulls
#   VTK/Qt/ffmpeg) ships the config package. A plain find_package(OpenCV) therefore fails on
#   a machine with just the split packages. This module makes it work in both cases.
#
# How it works
#   1. It first tries the upstream config package (find_package(OpenCV CONFIG QUIET)), so a
#      full OpenCV install (libopencv-dev, a source build, OpenCV_DIR=...) is used as is.
#   2. Otherwise it falls back to find_path/find_library and creates the same imported
#      targets the upstream config would (opencv_core, opencv_imgproc, ...).
#
# Usage
#   list(APPEND CMAKE_MODULE_PATH ${PROJECT_SOURCE_DIR}/cmake)
#   find_package(OpenCV 4 REQUIRED COMPONENTS core imgproc imgcodecs flann)
#   target_link_libraries(app PRIVATE ${OpenCV_LIBS})   # or opencv_core opencv_imgproc ...
#
#   Components are OpenCV module names ("core", "imgproc", ...; an "opencv_" prefix is
#   accepted). Without COMPONENTS, only "core" is looked for.
#
# Defines
#   OpenCV_FOUND           TRUE if the include dir, core and all REQUIRED components were
#                          found and the version matched.
#   OpenCV_<comp>_FOUND    TRUE for each requested component that was found.
#   OpenCV_VERSION         e.g. "4.6.0" (also OpenCV_VERSION_MAJOR/_MINOR/_PATCH).
#   OpenCV_INCLUDE_DIRS    include directory (e.g. /usr/include/opencv4).
#   OpenCV_LIBS            imported targets of the found requested components
#                          (opencv_core;opencv_imgproc;...).
#   OpenCV_FOUND_VIA       "CONFIG" (upstream OpenCVConfig.cmake) or "MODULE" (fallback).
#
# Imported targets (UNKNOWN IMPORTED in the fallback, upstream's own otherwise)
#   opencv_<comp>          with INTERFACE_INCLUDE_DIRECTORIES and, in the fallback, the
#                          inter-module links: imgproc -> core, imgcodecs -> imgproc core,
#                          flann -> core (any other module -> core).
#
# Cache variables (fallback): OpenCV_INCLUDE_DIR, OpenCV_<comp>_LIBRARY.
#
# When something is missing, the error names the Debian package to install
# (libopencv-<comp>-dev).

cmake_policy(PUSH)
cmake_policy(VERSION 3.16...3.25)

# Guard against re-entry: the nested find_package below uses CONFIG, which never loads a
# Find module, but be defensive if some config file re-enters find_package(OpenCV).
if(_OpenCV_FINDMODULE_ACTIVE)
  cmake_policy(POP)
  return()
endif()

include(FindPackageHandleStandardArgs)

# ---------------------------------------------------------------------------------------
# Requested components (normalised: "opencv_core" -> "core"); core is always needed.
# ---------------------------------------------------------------------------------------
set(_OpenCV_requested "")
if(OpenCV_FIND_COMPONENTS)
  foreach(_c IN LISTS OpenCV_FIND_COMPONENTS)
    string(REGEX REPLACE "^opencv_" "" _short "${_c}")
    list(APPEND _OpenCV_requested "${_short}")
  endforeach()
else()
  set(_OpenCV_requested core)
endif()
list(REMOVE_DUPLICATES _OpenCV_requested)

# Save our own find_package arguments: the nested call overwrites OpenCV_FIND_*.
set(_OpenCV_save_vars
    OpenCV_FIND_COMPONENTS OpenCV_FIND_REQUIRED OpenCV_FIND_QUIETLY
    OpenCV_FIND_VERSION OpenCV_FIND_VERSION_MAJOR OpenCV_FIND_VERSION_MINOR
    OpenCV_FIND_VERSION_PATCH OpenCV_FIND_VERSION_TWEAK OpenCV_FIND_VERSION_COUNT
    OpenCV_FIND_VERSION_EXACT OpenCV_FIND_VERSION_RANGE OpenCV_FIND_VERSION_MIN
    OpenCV_FIND_VERSION_MAX OpenCV_FIND_VERSION_RANGE_MIN OpenCV_FIND_VERSION_RANGE_MAX)
foreach(_c IN LISTS OpenCV_FIND_COMPONENTS)
  list(APPEND _OpenCV_save_vars OpenCV_FIND_REQUIRED_${_c})
endforeach()
foreach(_v IN LISTS _OpenCV_save_vars)
  if(DEFINED ${_v})
    set(_OpenCV_saved_${_v} "${${_v}}")
    set(_OpenCV_defined_${_v} TRUE)
  else()
    set(_OpenCV_defined_${_v} FALSE)
  endif()
endforeach()

# ---------------------------------------------------------------------------------------
# 1. Upstream config package (libopencv-dev, source builds, OpenCV_DIR).
#    No version is passed here: the version is checked once, below, for both paths.
# ---------------------------------------------------------------------------------------
# find_package() only *sets* OpenCV_FIND_REQUIRED etc. when true, so clear ours first:
# otherwise the nested call would inherit REQUIRED and upstream's config would abort
# with a FATAL_ERROR on a missing component instead of letting us fall back.
foreach(_v IN LISTS _OpenCV_save_vars)
  unset(${_v})
endforeach()
set(_OpenCV_FINDMODULE_ACTIVE TRUE)
find_package(OpenCV CONFIG QUIET COMPONENTS ${_OpenCV_requested})
unset(_OpenCV_FINDMODULE_ACTIVE)
set(_OpenCV_config_found "${OpenCV_FOUND}")

foreach(_v IN LISTS _OpenCV_save_vars)
  if(_OpenCV_defined_${_v})
    set(${_v} "${_OpenCV_saved_${_v}}")
  else()
    unset(${_v})
  endif()
  unset(_OpenCV_saved_${_v})
  unset(_OpenCV_defined_${_v})
endforeach()

set(_OpenCV_missing_pkgs "")

if(_OpenCV_config_found)
  # ------------------------------------------------------------------------------------
  # Config package found: upstream defines opencv_<comp>; check they really exist.
  # ------------------------------------------------------------------------------------
  set(OpenCV_FOUND_VIA CONFIG)
  set(_OpenCV_libs "")
  foreach(_c IN LISTS _OpenCV_requested)
    if(TARGET opencv_${_c})
      set(OpenCV_${_c}_FOUND TRUE)
      list(APPEND _OpenCV_libs opencv_${_c})
    else()
      set(OpenCV_${_c}_FOUND FALSE)
      list(APPEND _OpenCV_missing_pkgs libopencv-${_c}-dev)
    endif()
  endforeach()
  set(OpenCV_LIBS ${_OpenCV_libs})
  # Upstream sets OpenCV_INCLUDE_DIRS and OpenCV_VERSION; fill in the former if absent.
  if(NOT OpenCV_INCLUDE_DIRS AND TARGET opencv_core)
    get_target_property(OpenCV_INCLUDE_DIRS opencv_core INTERFACE_INCLUDE_DIRECTORIES)
  endif()
  set(_OpenCV_required_vars OpenCV_DIR OpenCV_INCLUDE_DIRS)
else()
  # ------------------------------------------------------------------------------------
  # 2. Fallback for Debian's split packages: headers + libraries, no config.
  # ------------------------------------------------------------------------------------
  set(OpenCV_FOUND_VIA MODULE)
  unset(OpenCV_FOUND)
  unset(OpenCV_LIBS)
  unset(OpenCV_INCLUDE_DIRS)
  unset(OpenCV_VERSION)

  find_path(OpenCV_INCLUDE_DIR
    NAMES opencv2/core.hpp
    PATH_SUFFIXES opencv4
    DOC "OpenCV include directory (contains opencv2/core.hpp)")
  mark_as_advanced(OpenCV_INCLUDE_DIR)

  # Version from opencv2/core/version.hpp.
  if(OpenCV_INCLUDE_DIR AND EXISTS "${OpenCV_INCLUDE_DIR}/opencv2/core/version.hpp")
    file(STRINGS "${OpenCV_INCLUDE_DIR}/opencv2/core/version.hpp" _OpenCV_ver_lines
         REGEX "^#define[ \t]+CV_VERSION_(MAJOR|MINOR|REVISION)[ \t]+[0-9]+")
    foreach(_part MAJOR MINOR REVISION)
      set(_OpenCV_ver_${_part} "")
      foreach(_line IN LISTS _OpenCV_ver_lines)
        if(_line MATCHES "^#define[ \t]+CV_VERSION_${_part}[ \t]+([0-9]+)")
          set(_OpenCV_ver_${_part} "${CMAKE_MATCH_1}")
        endif()
      endforeach()
    endforeach()
    if(NOT _OpenCV_ver_MAJOR STREQUAL "" AND NOT _OpenCV_ver_MINOR STREQUAL ""
       AND NOT _OpenCV_ver_REVISION STREQUAL "")
      set(OpenCV_VERSION_MAJOR ${_OpenCV_ver_MAJOR})
      set(OpenCV_VERSION_MINOR ${_OpenCV_ver_MINOR})
      set(OpenCV_VERSION_PATCH ${_OpenCV_ver_REVISION})
      set(OpenCV_VERSION "${_OpenCV_ver_MAJOR}.${_OpenCV_ver_MINOR}.${_OpenCV_ver_REVISION}")
    endif()
    unset(_OpenCV_ver_lines)
    unset(_OpenCV_ver_MAJOR)
    unset(_OpenCV_ver_MINOR)
    unset(_OpenCV_ver_REVISION)
  endif()

  # Inter-module dependencies (what upstream's OpenCVModules.cmake would link).
  set(_OpenCV_deps_core "")
  set(_OpenCV_deps_imgproc core)
  set(_OpenCV_deps_imgcodecs imgproc core)
  set(_OpenCV_deps_flann core)

  # Everything to locate: core, the requested components and their dependencies.
  set(_OpenCV_search core ${_OpenCV_requested})
  foreach(_c IN LISTS _OpenCV_requested)
    if(NOT DEFINED _OpenCV_deps_${_c})
      set(_OpenCV_deps_${_c} core)
    endif()
    list(APPEND _OpenCV_search ${_OpenCV_deps_${_c}})
  endforeach()
  list(REMOVE_DUPLICATES _OpenCV_search)

  # Locate each library (and its main header, which ships in the same -dev package).
  foreach(_c IN LISTS _OpenCV_search)
    find_library(OpenCV_${_c}_LIBRARY
      NAMES opencv_${_c}
      DOC "OpenCV ${_c} library (Debian: libopencv-${_c}-dev)")
    mark_as_advanced(OpenCV_${_c}_LIBRARY)
    if(OpenCV_${_c}_LIBRARY AND OpenCV_INCLUDE_DIR
       AND EXISTS "${OpenCV_INCLUDE_DIR}/opencv2/${_c}.hpp")
      set(_OpenCV_have_${_c} TRUE)
    else()
      set(_OpenCV_have_${_c} FALSE)
    endif()
  endforeach()

  # A component is found if it and all its dependencies are present. Create the targets
  # in dependency order (core first).
  foreach(_c IN LISTS _OpenCV_search)
    set(OpenCV_${_c}_FOUND ${_OpenCV_have_${_c}})
    foreach(_d IN LISTS _OpenCV_deps_${_c})
      if(NOT _OpenCV_have_${_d})
        set(OpenCV_${_c}_FOUND FALSE)
      endif()
    endforeach()
    if(NOT _OpenCV_have_${_c})
      list(APPEND _OpenCV_missing_pkgs libopencv-${_c}-dev)
    endif()
  endforeach()
  foreach(_c core imgproc ${_OpenCV_search})  # core/imgproc first: they are deps
    if(OpenCV_${_c}_FOUND AND NOT TARGET opencv_${_c})
      add_library(opencv_${_c} UNKNOWN IMPORTED)
      set_target_properties(opencv_${_c} PROPERTIES
        IMPORTED_LOCATION "${OpenCV_${_c}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${OpenCV_INCLUDE_DIR}")
      set(_OpenCV_link "")
      foreach(_d IN LISTS _OpenCV_deps_${_c})
        list(APPEND _OpenCV_link opencv_${_d})
      endforeach()
      if(_OpenCV_link)
        set_property(TARGET opencv_${_c} PROPERTY INTERFACE_LINK_LIBRARIES ${_OpenCV_link})
      endif()
    endif()
  endforeach()

  set(OpenCV_LIBS "")
  foreach(_c IN LISTS _OpenCV_requested)
    if(OpenCV_${_c}_FOUND)
      list(APPEND OpenCV_LIBS opencv_${_c})
    endif()
  endforeach()
  if(OpenCV_INCLUDE_DIR)
    set(OpenCV_INCLUDE_DIRS "${OpenCV_INCLUDE_DIR}")
  endif()
  set(_OpenCV_required_vars OpenCV_INCLUDE_DIR OpenCV_core_LIBRARY)

  foreach(_c IN LISTS _OpenCV_search)
    unset(_OpenCV_have_${_c})
    unset(_OpenCV_deps_${_c})
  endforeach()
  unset(_OpenCV_search)
  unset(_OpenCV_link)
endif()

# Component variables under the names the caller used (e.g. OpenCV_opencv_core_FOUND),
# which is what HANDLE_COMPONENTS checks.
foreach(_c IN LISTS OpenCV_FIND_COMPONENTS)
  string(REGEX REPLACE "^opencv_" "" _short "${_c}")
  set(OpenCV_${_c}_FOUND ${OpenCV_${_short}_FOUND})
endforeach()

# Failure reason naming the Debian packages to install.
if(NOT OpenCV_INCLUDE_DIRS AND NOT _OpenCV_config_found)
  list(PREPEND _OpenCV_missing_pkgs libopencv-core-dev)
endif()
list(REMOVE_DUPLICATES _OpenCV_missing_pkgs)
set(_OpenCV_reason "")
if(_OpenCV_missing_pkgs)
  list(JOIN _OpenCV_missing_pkgs " " _OpenCV_pkgs_str)
  set(_OpenCV_reason
    "OpenCV module(s) missing. On Debian/Ubuntu: apt-get install ${_OpenCV_pkgs_str} "
    "(or install libopencv-dev / set OpenCV_DIR to a directory containing OpenCVConfig.cmake).")
  string(JOIN "" _OpenCV_reason ${_OpenCV_reason})
endif()

find_package_handle_standard_args(OpenCV
  REQUIRED_VARS ${_OpenCV_required_vars}
  VERSION_VAR OpenCV_VERSION
  HANDLE_COMPONENTS
  REASON_FAILURE_MESSAGE "${_OpenCV_reason}")

unset(_OpenCV_requested)
unset(_OpenCV_save_vars)
unset(_OpenCV_config_found)
unset(_OpenCV_missing_pkgs)
unset(_OpenCV_pkgs_str)
unset(_OpenCV_reason)
unset(_OpenCV_required_vars)
unset(_OpenCV_libs)
unset(_short)
unset(_c)
unset(_d)
unset(_v)
unset(_part)
unset(_line)

cmake_policy(POP)
