package io.taskpool.engine;

import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;

/**
 * Minimal Operaton engine used by Taskpool's integration tests.
 * Everything (REST at /engine-rest, H2 in memory, history level full,
 * no authorization) is configured in application.yaml.
 */
@SpringBootApplication
public class EngineApp {
  public static void main(String[] args) {
    SpringApplication.run(EngineApp.class, args);
  }
}
