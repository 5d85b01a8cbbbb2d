import com.amazonaws.services.dynamodbv2.local.main.ServerRunner;
import com.amazonaws.services.dynamodbv2.local.server.DynamoDBProxyServer;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;

/**
 * DynamoDB Local has no bind-address flag and listens on every interface; its port flag refuses 0.
 * Before it starts, point its Jetty connector at the loopback and an ephemeral port, then print it.
 */
public class LoopbackDynamoDBLocal {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(
        new String[] {"-inMemory", "-port", "8000", "-disableTelemetry"});
    java.lang.reflect.Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    for (Connector connector : server.getConnectors()) {
      ((ServerConnector) connector).setHost("127.0.0.1");
      ((ServerConnector) connector).setPort(0);
    }
    proxy.start();
    System.out.println("listening on 127.0.0.1:" + ((ServerConnector) server.getConnectors()[0]).getLocalPort());
  }
}
