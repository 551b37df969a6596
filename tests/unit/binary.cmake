# Binary records (schema/schema_binary.c, gateway/gw_parse_pb.c): descriptors made by protoc from
# the test .proto files and payloads encoded with protobuf-c (protoc-c), both at build time, so
# the validator is checked against the real tools' output. Included from tests/CMakeLists.txt
# after sl_unit_tests() has created the test executables.
find_program(SL_PROTOC protoc REQUIRED)
find_program(SL_PROTOC_C protoc-c REQUIRED)
set(SL_PROTO_SRC ${CMAKE_CURRENT_SOURCE_DIR}/unit/schema/proto)
set(SL_BATCH_PROTO_SRC ${PROJECT_SOURCE_DIR}/gateway/proto)
set(SL_PROTO_GEN ${CMAKE_CURRENT_BINARY_DIR}/proto_gen)
file(MAKE_DIRECTORY ${SL_PROTO_GEN})
add_custom_command(
    OUTPUT ${SL_PROTO_GEN}/event3.desc ${SL_PROTO_GEN}/event2.desc
           ${SL_PROTO_GEN}/event3.pb-c.c ${SL_PROTO_GEN}/event3.pb-c.h
           ${SL_PROTO_GEN}/record_batch.pb-c.c ${SL_PROTO_GEN}/record_batch.pb-c.h
    COMMAND ${SL_PROTOC} -I${SL_PROTO_SRC} --descriptor_set_out=${SL_PROTO_GEN}/event3.desc
            event3.proto
    COMMAND ${SL_PROTOC} -I${SL_PROTO_SRC} --descriptor_set_out=${SL_PROTO_GEN}/event2.desc
            event2.proto
    COMMAND ${SL_PROTOC_C} -I${SL_PROTO_SRC} --c_out=${SL_PROTO_GEN} event3.proto
    COMMAND ${SL_PROTOC_C} -I${SL_BATCH_PROTO_SRC} --c_out=${SL_PROTO_GEN} record_batch.proto
    DEPENDS ${SL_PROTO_SRC}/event3.proto ${SL_PROTO_SRC}/event2.proto
            ${SL_BATCH_PROTO_SRC}/record_batch.proto
    COMMENT "protoc / protoc-c: binary record test schemas")
add_library(sl_test_protos STATIC ${SL_PROTO_GEN}/event3.pb-c.c
    ${SL_PROTO_GEN}/record_batch.pb-c.c)
target_include_directories(sl_test_protos PUBLIC ${SL_PROTO_GEN}
    ${CMAKE_CURRENT_SOURCE_DIR}/unit/schema)
target_compile_definitions(sl_test_protos PUBLIC SL_PROTO_GEN="${SL_PROTO_GEN}")
target_link_libraries(sl_test_protos PUBLIC PkgConfig::PROTOBUFC sl_build)

foreach(t schema_test_schema_binary_pb gateway_test_gw_parse_pb)
    if(TARGET ${t})
        target_link_libraries(${t} PRIVATE sl_test_protos)
    endif()
endforeach()
if(TARGET schema_test_schema_binary_avro)
    target_compile_definitions(schema_test_schema_binary_avro PRIVATE
        SL_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
