<?php
/**
 * The parameters the REST routes and the dashboard page pass on to the sidecar.
 *
 * Only whitelisted parameters go on, each sanitized by its kind; the sidecar
 * validates the values themselves (and answers 400 naming a bad one).
 *
 * @package FormRelay_Bridge
 */

defined( 'ABSPATH' ) || exit;

/**
 * The whitelists and their sanitizing.
 */
final class FormRelay_REST_Params {

	/** Query parameters of the jobs list (sidecar names; the sidecar validates the values). */
	const JOBS_PARAMS = array(
		'status'   => 'key',
		'form_id'  => 'int',
		'partner'  => 'text',
		'search'   => 'text',
		'from'     => 'text',
		'to'       => 'text',
		'orderby'  => 'key',
		'order'    => 'key',
		'page'     => 'int',
		'per_page' => 'int',
	);

	/** Query parameters of the log viewer. */
	const LOGS_PARAMS = array(
		'level'    => 'key',
		'event'    => 'event',
		'job_id'   => 'int',
		'search'   => 'text',
		'from'     => 'text',
		'to'       => 'text',
		'page'     => 'int',
		'per_page' => 'int',
	);

	/** The filter of a bulk "retry all failed". */
	const BULK_FILTER_PARAMS = array(
		'form_id' => 'int',
		'partner' => 'text',
		'search'  => 'text',
		'from'    => 'text',
		'to'      => 'text',
	);

	/**
	 * The jobs list's parameters.
	 *
	 * @param array $params The request's (unslashed) query parameters.
	 * @return array
	 */
	public static function jobs( array $params ) {
		return self::pick( $params, self::JOBS_PARAMS );
	}

	/**
	 * The log viewer's parameters.
	 *
	 * @param array $params The request's (unslashed) query parameters.
	 * @return array
	 */
	public static function logs( array $params ) {
		return self::pick( $params, self::LOGS_PARAMS );
	}

	/**
	 * The body of a bulk retry: {"ids": [n, ...]}, {"all_failed": true, "filter": {...},
	 * "after": n} or {}.
	 *
	 * @param mixed $ids        The `ids` parameter.
	 * @param mixed $all_failed The `all_failed` parameter.
	 * @param mixed $filter     The `filter` parameter.
	 * @param mixed $after      The `after` parameter: the last job id of the previous batch.
	 * @return object
	 */
	public static function bulk_retry_body( $ids, $all_failed, $filter, $after = 0 ) {
		$body = array();
		if ( is_array( $ids ) ) {
			$clean = array();
			foreach ( $ids as $id ) {
				if ( ( is_int( $id ) && $id > 0 ) || ( is_string( $id ) && ctype_digit( $id ) ) ) {
					$clean[] = absint( $id );
				}
			}
			$body['ids'] = array_values( array_unique( array_filter( $clean ) ) );
		} elseif ( rest_sanitize_boolean( $all_failed ) ) {
			$body['all_failed'] = true;
			$body['filter']     = (object) self::pick( is_array( $filter ) ? $filter : array(), self::BULK_FILTER_PARAMS );
			$body['after']      = absint( $after );
		}
		return (object) $body;
	}

	/**
	 * The sidecar's query for a view, from the admin page's parameters.
	 *
	 * The admin page's own `page` parameter is the menu slug, so the views
	 * number their pages with `paged` (WordPress' name for it), as the
	 * sidecar's view routes take it; the JSON routes take `page`.
	 *
	 * @param string $name   overview|jobs|job|logs.
	 * @param array  $params The page's (unslashed) query parameters.
	 * @return array
	 */
	public static function view_query( $name, array $params ) {
		switch ( $name ) {
			case 'jobs':
				return self::pick( $params, self::paged( self::JOBS_PARAMS ) );
			case 'logs':
				return self::pick( $params, self::paged( self::LOGS_PARAMS ) );
			case 'job':
				return self::pick( $params, array( 'id' => 'int' ) );
			default:
				return array();
		}
	}

	/**
	 * A JSON route's parameters as its view takes them: `paged` in the place of `page`.
	 *
	 * @param array $spec Name => kind.
	 * @return array
	 */
	private static function paged( array $spec ) {
		$out = array();
		foreach ( $spec as $name => $kind ) {
			$out[ 'page' === $name ? 'paged' : $name ] = $kind;
		}
		return $out;
	}

	/**
	 * The whitelisted parameters, sanitized, in the whitelist's order.
	 *
	 * Numbers are passed as digits; anything else given for a number is
	 * passed as sanitized text, so that the sidecar's 400 names the parameter.
	 *
	 * @param array $params Candidate parameters (unslashed).
	 * @param array $spec   Name => 'key'|'event'|'int'|'text'.
	 * @return array
	 */
	private static function pick( array $params, array $spec ) {
		$out = array();
		foreach ( $spec as $name => $kind ) {
			if ( ! isset( $params[ $name ] ) || ! is_scalar( $params[ $name ] ) ) {
				continue;
			}
			$value = trim( (string) $params[ $name ] );
			if ( 'key' === $kind ) {
				$value = sanitize_key( $value );
			} elseif ( 'event' === $kind ) {
				$value = preg_replace( '/[^a-z0-9_.\-]/', '', strtolower( $value ) );
			} elseif ( 'int' === $kind && ctype_digit( $value ) ) {
				$value = (string) absint( $value );
			} else {
				$value = sanitize_text_field( $value );
			}
			if ( '' !== $value ) {
				$out[ $name ] = $value;
			}
		}
		return $out;
	}
}
