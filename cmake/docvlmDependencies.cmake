# Finds docvlm's dependencies (all Debian 12 packages). Shared by the build tree and by the
# installed docvlmConfig.cmake, so both fail the same way: with the name of the missing package.
include_guard(GLOBAL)
include(CMakeFindDependencyMacro)

macro(docvlm_require pkg debian)
  find_package(${pkg} ${ARGN} CONFIG QUIET)
  if(NOT ${pkg}_FOUND)
    message(FATAL_ERROR "docvlm needs ${pkg}: install the Debian package '${debian}' "
                        "(apt-get install ${debian}), or run tools/dev which installs it.")
  endif()
endmacro()

docvlm_require(xtl xtl-dev)
docvlm_require(xtensor libxtensor-dev)
docvlm_require(xsimd libxsimd-dev)
docvlm_require(nlohmann_json nlohmann-json3-dev)
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)

# stb (image decoding) ships as headers + libstb.so in Debian; it has no CMake config.
if(NOT TARGET docvlm::stb)
  find_path(DOCVLM_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb)
  find_library(DOCVLM_STB_LIBRARY stb)
  if(NOT DOCVLM_STB_INCLUDE_DIR OR NOT DOCVLM_STB_LIBRARY)
    message(FATAL_ERROR "docvlm needs stb_image: install the Debian package 'libstb-dev' "
                        "(apt-get install libstb-dev), or run tools/dev which installs it.")
  endif()
  add_library(docvlm::stb INTERFACE IMPORTED)
  set_target_properties(docvlm::stb PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${DOCVLM_STB_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${DOCVLM_STB_LIBRARY}")
endif()

# utf8proc (Unicode categories and NFC for the tokenizer) has no CMake config in Debian either.
if(NOT TARGET docvlm::utf8proc)
  find_path(DOCVLM_UTF8PROC_INCLUDE_DIR utf8proc.h)
  find_library(DOCVLM_UTF8PROC_LIBRARY utf8proc)
  if(NOT DOCVLM_UTF8PROC_INCLUDE_DIR OR NOT DOCVLM_UTF8PROC_LIBRARY)
    message(FATAL_ERROR "docvlm needs utf8proc: install the Debian package 'libutf8proc-dev' "
                        "(apt-get install libutf8proc-dev), or run tools/dev which installs it.")
  endif()
  add_library(docvlm::utf8proc INTERFACE IMPORTED)
  set_target_properties(docvlm::utf8proc PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${DOCVLM_UTF8PROC_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${DOCVLM_UTF8PROC_LIBRARY}")
endif()
