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

# Libraries that Debian ships without a CMake config: an imported target from a header and a library.
function(docvlm_plain_library target header library debian)
  if(TARGET ${target})
    return()
  endif()
  string(MAKE_C_IDENTIFIER "${target}" id)
  find_path(${id}_INCLUDE_DIR ${header} PATH_SUFFIXES ${ARGN})
  find_library(${id}_LIBRARY ${library})
  if(NOT ${id}_INCLUDE_DIR OR NOT ${id}_LIBRARY)
    message(FATAL_ERROR "docvlm needs ${library}: install the Debian package '${debian}' "
                        "(apt-get install ${debian}), or run tools/dev which installs it.")
  endif()
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${${id}_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${${id}_LIBRARY}")
endfunction()

docvlm_plain_library(docvlm::stb stb_image.h stb libstb-dev stb)            # image decoding
docvlm_plain_library(docvlm::utf8proc utf8proc.h utf8proc libutf8proc-dev)  # Unicode for the tokenizer

# The optional parts, created on demand (docvlm_optional_targets()), each an INTERFACE target over
# docvlm::docvlm: docvlm::pdf (io/pdf.hpp: poppler-cpp), docvlm::tiff (io/tiff.hpp: libtiff) and
# docvlm::server (serve/: cpp-httplib, with PDF and TIFF uploads).
function(docvlm_optional_targets)
  if(TARGET docvlm::server)
    return()
  endif()
  docvlm_plain_library(docvlm::poppler_cpp poppler-document.h poppler-cpp libpoppler-cpp-dev poppler/cpp)
  docvlm_plain_library(docvlm::libtiff tiffio.h tiff libtiff-dev)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(DOCVLM_HTTPLIB QUIET IMPORTED_TARGET GLOBAL cpp-httplib)
  endif()
  if(NOT DOCVLM_HTTPLIB_FOUND)
    message(FATAL_ERROR "docvlm's server needs cpp-httplib: install the Debian packages 'libcpp-httplib-dev pkg-config' "
                        "(apt-get install libcpp-httplib-dev pkg-config), or run tools/dev which installs them.")
  endif()
  foreach(part pdf tiff server)
    add_library(docvlm::${part} INTERFACE IMPORTED GLOBAL)
  endforeach()
  set_target_properties(docvlm::pdf PROPERTIES INTERFACE_LINK_LIBRARIES "docvlm::docvlm;docvlm::poppler_cpp")
  set_target_properties(docvlm::tiff PROPERTIES INTERFACE_LINK_LIBRARIES "docvlm::docvlm;docvlm::libtiff")
  set_target_properties(docvlm::server PROPERTIES INTERFACE_LINK_LIBRARIES "docvlm::pdf;docvlm::tiff;PkgConfig::DOCVLM_HTTPLIB")
endfunction()
