<?php
/**
 * Notify: wake the sidecar for each captured job, without slowing the submission.
 *
 * At the end of the request (`shutdown`) each job id is POSTed to
 * {sidecar_url}/v1/notify as `{"job_id":N}`, signed (FormRelay_Signing, purpose
 * FR1-notify) with X-FormRelay-Timestamp, a fresh X-FormRelay-Nonce and
 * X-FormRelay-Signature.
 *
 * Under PHP-FPM (or LiteSpeed) the response is finished first, so the visitor
 * never waits. Elsewhere (mod_php, `php -S`) the visitor's connection stays
 * open until shutdown ends, so the request is written on a raw socket with a
 * short connect timeout and the answer is never read: a stopped sidecar costs
 * a refused connect, a hung one nothing, an unreachable one the connect
 * timeout. A notify that does not arrive loses nothing: the job waits in
 * the table, and the sidecar finds waiting jobs without being told (when a
 * worker starts, and on its periodic sweep).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * Sends the signed doorbell requests.
 */
final class FormRelay_Notify {

	const PATH              = '/v1/notify';
	const CONNECT_TIMEOUT   = 0.15; // Seconds, for the TCP (and TLS) connect.
	const WRITE_TIMEOUT_US  = 100000; // Microseconds, for writing the request.
	const SHUTDOWN_PRIORITY = 100; // After WordPress flushed its output buffers (priority 1).

	/**
	 * Jobs captured in this request, not yet notified.
	 *
	 * @var int[]
	 */
	private static $job_ids = array();

	/**
	 * Whether send_queued() is hooked to `shutdown` already.
	 *
	 * @var bool
	 */
	private static $hooked = false;

	/**
	 * Remember a job to notify at the end of the request.
	 *
	 * @param int $job_id The job's id.
	 * @return void
	 */
	public static function queue( $job_id ) {
		$job_id = absint( $job_id );
		if ( $job_id < 1 ) {
			return;
		}
		self::$job_ids[] = $job_id;
		if ( ! self::$hooked ) {
			add_action( 'shutdown', array( __CLASS__, 'send_queued' ), self::SHUTDOWN_PRIORITY );
			self::$hooked = true;
		}
	}

	/**
	 * The `shutdown` callback: notify every queued job (none without a URL and a secret).
	 *
	 * @return void
	 */
	public static function send_queued() {
		$job_ids       = self::$job_ids;
		self::$job_ids = array();
		if ( ! $job_ids ) {
			return;
		}
		$secret = FormRelay_Settings::shared_secret();
		$target = self::target( FormRelay_Settings::sidecar_url() );
		if ( '' === $secret || null === $target ) {
			return; // Not configured: the sidecar finds the jobs by itself.
		}
		// The visitor has the whole page; what follows is off the clock.
		if ( function_exists( 'fastcgi_finish_request' ) ) {
			fastcgi_finish_request();
		} elseif ( function_exists( 'litespeed_finish_request' ) ) {
			litespeed_finish_request();
		}
		foreach ( $job_ids as $job_id ) {
			// One host: when it cannot be reached, the next try would wait as long again.
			if ( ! self::send( $target, $secret, $job_id, time() ) ) {
				break;
			}
		}
	}

	/**
	 * Where to connect for a sidecar base URL, or null when it is not usable.
	 *
	 * @param string $url E.g. http://127.0.0.1:8787 or https://sidecar.example/formrelay.
	 * @return array{remote: string, host: string, host_header: string, path: string}|null
	 */
	public static function target( $url ) {
		$parts = '' === $url ? false : wp_parse_url( $url );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return null;
		}
		$scheme = strtolower( $parts['scheme'] );
		if ( 'http' !== $scheme && 'https' !== $scheme ) {
			return null;
		}
		$host = $parts['host'];
		$base = isset( $parts['path'] ) ? rtrim( $parts['path'], '/' ) : '';
		// Nothing that could break the request line or the Host header.
		if ( ! preg_match( '/^[A-Za-z0-9._\-]+$|^\[[0-9A-Fa-f:.]+\]$/', $host )
			|| ! preg_match( '#^[A-Za-z0-9\-._~!$&\'()*+,;=:@%/]*$#', $base ) ) {
			return null;
		}
		$default_port = 'https' === $scheme ? 443 : 80;
		$port         = isset( $parts['port'] ) ? (int) $parts['port'] : $default_port;
		return array(
			'remote'      => ( 'https' === $scheme ? 'ssl://' : 'tcp://' ) . $host . ':' . $port,
			'host'        => trim( $host, '[]' ),
			'host_header' => $port === $default_port ? $host : $host . ':' . $port,
			'path'        => $base . self::PATH,
		);
	}

	/**
	 * The complete HTTP/1.1 request that notifies one job.
	 *
	 * @param array  $target    See target().
	 * @param string $secret    The shared secret.
	 * @param int    $job_id    The job's id.
	 * @param int    $timestamp Unix seconds.
	 * @param string $nonce     The request's nonce (FormRelay_Signing::nonce()).
	 * @return string
	 */
	public static function build_request( array $target, $secret, $job_id, $timestamp, $nonce ) {
		$body      = (string) wp_json_encode( array( 'job_id' => (int) $job_id ) );
		$timestamp = (string) (int) $timestamp;
		$lines     = array(
			'POST ' . $target['path'] . ' HTTP/1.1',
			'Host: ' . $target['host_header'],
			'User-Agent: FormRelay-Bridge/' . FORMRELAY_BRIDGE_VERSION,
			'Content-Type: application/json',
			'Content-Length: ' . strlen( $body ),
			'X-FormRelay-Timestamp: ' . $timestamp,
			'X-FormRelay-Nonce: ' . $nonce,
			'X-FormRelay-Signature: ' . FormRelay_Signing::notify( $secret, $timestamp, $nonce, $body ),
			'Connection: close',
		);
		return implode( "\r\n", $lines ) . "\r\n\r\n" . $body;
	}

	/**
	 * Connect, write the request, close; never read the answer.
	 *
	 * @param array  $target    See target().
	 * @param string $secret    The shared secret.
	 * @param int    $job_id    The job's id.
	 * @param int    $timestamp Unix seconds.
	 * @return bool Whether the request was handed to the network.
	 */
	private static function send( array $target, $secret, $job_id, $timestamp ) {
		$request = self::build_request( $target, $secret, $job_id, $timestamp, FormRelay_Signing::nonce() );
		$context = stream_context_create(
			array(
				'ssl' => array(
					'peer_name'        => $target['host'],
					'verify_peer'      => true,
					'verify_peer_name' => true,
					'SNI_enabled'      => true,
				),
			)
		);
		$errno   = 0;
		$errstr  = '';
		// A refused or timed-out connect is expected (a stopped sidecar): no PHP warning.
		set_error_handler( array( __CLASS__, 'ignore_error' ) ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_set_error_handler
		try {
			$socket = stream_socket_client( $target['remote'], $errno, $errstr, self::CONNECT_TIMEOUT, STREAM_CLIENT_CONNECT, $context );
			if ( false === $socket ) {
				self::debug( sprintf( 'FormRelay Bridge: job %d: the sidecar was not notified (connect error %d: %s)', $job_id, $errno, $errstr ) );
				return false;
			}
			stream_set_timeout( $socket, 0, self::WRITE_TIMEOUT_US );
			$written = fwrite( $socket, $request ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_system_operations_fwrite
			fclose( $socket ); // phpcs:ignore WordPress.WP.AlternativeFunctions.file_system_operations_fclose
		} finally {
			restore_error_handler();
		}
		if ( strlen( $request ) !== $written ) {
			self::debug( sprintf( 'FormRelay Bridge: job %d: the notify request could not be written', $job_id ) );
			return false;
		}
		return true;
	}

	/**
	 * Error handler while talking to the sidecar: swallow the warning.
	 *
	 * @return bool
	 */
	public static function ignore_error() {
		return true;
	}

	/**
	 * Log a line when WP_DEBUG is on (a stopped sidecar is not worth a line per submission otherwise).
	 *
	 * @param string $message Ids and socket errors only.
	 * @return void
	 */
	private static function debug( $message ) {
		if ( defined( 'WP_DEBUG' ) && WP_DEBUG ) {
			error_log( $message ); // phpcs:ignore WordPress.PHP.DevelopmentFunctions.error_log_error_log
		}
	}
}
